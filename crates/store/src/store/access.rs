//! Access rights: who owns an object, grants and their revocation, and the lists of both.

use crate::error::{Result, StoreError};
use crate::model::{Actor, Attributes, ObjectFilter, ObjectRecord, Operation};

use super::{AccessEntry, ObtainedEntry, Store};

impl Store {
    pub(super) fn owned_record(&self, actor: &Actor, uid: &str) -> Result<ObjectRecord> {
        let record = self.record(uid)?;
        if record.owner != actor.as_str() {
            return Err(match self.refusal(actor, &record, Operation::Get)? {
                hidden @ StoreError::Hidden { .. } => hidden,
                _ => StoreError::NotOwner {
                    uid: uid.to_owned(),
                },
            });
        }
        Ok(record)
    }

    pub(super) fn check_grantee(user: &str) -> Result<()> {
        if user == Actor::EVERYONE {
            Ok(())
        } else {
            Actor::new(user).map(|_| ())
        }
    }

    /// Grants `user` (or `*`, everyone) `operations` on an object the actor owns.
    pub fn grant(
        &self,
        actor: &Actor,
        uid: &str,
        user: &str,
        operations: &[Operation],
    ) -> Result<()> {
        self.change_access(actor, uid, user, operations, true)
    }

    /// Takes `operations` on an object the actor owns back from `user`.
    pub fn revoke_access(
        &self,
        actor: &Actor,
        uid: &str,
        user: &str,
        operations: &[Operation],
    ) -> Result<()> {
        self.change_access(actor, uid, user, operations, false)
    }

    pub(super) fn change_access(
        &self,
        actor: &Actor,
        uid: &str,
        user: &str,
        operations: &[Operation],
        granted: bool,
    ) -> Result<()> {
        self.owned_record(actor, uid)?;
        Self::check_grantee(user)?;
        self.backend.set_grants(uid, user, operations, granted)?;
        tracing::info!(owner = %actor, uid, grantee = user, ?operations, granted, "access changed");
        Ok(())
    }

    /// Who holds what on an object the actor owns.
    pub fn access_list(&self, actor: &Actor, uid: &str) -> Result<Vec<AccessEntry>> {
        self.owned_record(actor, uid)?;
        Ok(self
            .backend
            .grants_on(uid)?
            .into_iter()
            .map(|(user, operations)| AccessEntry { user, operations })
            .collect())
    }

    /// Objects the actor owns.
    pub fn owned(&self, actor: &Actor) -> Result<Vec<Attributes>> {
        Ok(self
            .backend
            .find(&ObjectFilter::default(), actor.as_str())?
            .iter()
            .filter(|r| r.owner == actor.as_str())
            .map(Attributes::from)
            .collect())
    }

    /// Objects others granted the actor rights on.
    pub fn obtained(&self, actor: &Actor) -> Result<Vec<ObtainedEntry>> {
        Ok(self
            .backend
            .grants_to(actor.as_str())?
            .into_iter()
            .map(|(r, operations)| ObtainedEntry {
                unique_identifier: r.uid,
                object_type: r.object_type,
                state: r.state,
                owner: r.owner,
                operations,
            })
            .collect())
    }
}
