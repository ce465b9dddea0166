//! `mailpki-workflows`: the Google workflows (CSE onboarding, hosted S/MIME import and
//! rotation) and batch minting as library calls, for the CLI and the server
//! alike. Each runs through [`mailpki_kms::Kms`] (the embedded store or a KMS server, the same
//! calls either way) and the Gmail API client, and bulk work runs on one [`batch`] engine:
//! rows from a CSV, one job per user, a report and the store's journal so that a re-run
//! resumes.

pub mod batch;
pub mod cse;
mod error;
pub mod expiry;
pub mod hints;
pub mod input;
pub mod mint;
pub mod offboard;
pub mod onboard;
pub mod rows;
pub mod smime;

pub use error::{Result, WorkflowError, describe};
