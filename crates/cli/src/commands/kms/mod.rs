//! `mailpki kms ...`: the key store.

mod access_rights;
mod attributes;
mod certify;
mod certify_batch;
mod crl;
mod export;
mod import;
mod lifecycle;
mod lint;
mod list;
mod sym_keys;

use anyhow::Result;

use super::Ctx;
use crate::args::{
    AccessRightsCommand, AttributesCommand, CertificatesCommand, CrlCommand, KeysCommand,
    KmsCommand, MasterKeyCommand, SymCommand, SymKeysCommand,
};

/// `kms master-key rotate`: on the store itself, never through a server.
fn rotate_master_key(ctx: &Ctx, new_key_file: &std::path::Path) -> Result<()> {
    let count = ctx.kms()?.rotate_master_key(new_key_file)?;
    ctx.printer.warn(&format!(
        "the store now opens only with {}: point master_key_file (or MAILPKI_MASTER_KEY) at it \
         before the next command, and keep the old key until you have checked",
        new_key_file.display()
    ));
    ctx.printer.print(
        format!("re-sealed {count} keys under {}", new_key_file.display()),
        &serde_json::json!({"resealed": count, "master_key_file": new_key_file}),
    )
}

pub(crate) fn run(ctx: &Ctx, command: KmsCommand) -> Result<()> {
    match command {
        KmsCommand::Certificates(c) => match c {
            CertificatesCommand::Import(args) => import::run(ctx, &args),
            CertificatesCommand::Export(args) => export::run(ctx, &args),
            CertificatesCommand::List(args) => list::run(ctx, &args),
            CertificatesCommand::Certify(args) => certify::run(ctx, &args),
            CertificatesCommand::CertifyBatch(args) => certify_batch::run(ctx, &args),
            CertificatesCommand::Lint(args) => lint::run(ctx, &args),
            CertificatesCommand::Revoke(args) => lifecycle::revoke(ctx, &args),
            CertificatesCommand::Destroy(args) => lifecycle::destroy(ctx, &args),
        },
        KmsCommand::Attributes(AttributesCommand::Get(args)) => attributes::get(ctx, &args),
        KmsCommand::AccessRights(c) => match c {
            AccessRightsCommand::Grant(args) => access_rights::change(ctx, &args, true),
            AccessRightsCommand::Revoke(args) => access_rights::change(ctx, &args, false),
            AccessRightsCommand::List { id } => access_rights::list(ctx, &id),
            AccessRightsCommand::Owned => access_rights::owned(ctx),
            AccessRightsCommand::Obtained => access_rights::obtained(ctx),
        },
        KmsCommand::Sym(SymCommand::Keys(c)) => match c {
            SymKeysCommand::Create(args) => sym_keys::create(ctx, &args),
            SymKeysCommand::Revoke(args) => lifecycle::revoke(ctx, &args),
            SymKeysCommand::Destroy(args) => lifecycle::destroy(ctx, &args),
        },
        KmsCommand::Keys(c) => match c {
            KeysCommand::ImportHsm(args) => sym_keys::import_hsm(ctx, &args),
            KeysCommand::Revoke(args) => lifecycle::revoke(ctx, &args),
            KeysCommand::Destroy(args) => lifecycle::destroy(ctx, &args),
        },
        KmsCommand::MasterKey(MasterKeyCommand::Rotate { new_key_file }) => {
            rotate_master_key(ctx, &new_key_file)
        }
        KmsCommand::Crl(CrlCommand::Create(args)) => crl::create(ctx, &args),
        // Dispatched to the `google` commands by `commands::run`.
        KmsCommand::Google(_) => unreachable!("`kms google` is routed before `kms`"),
    }
}
