//! RAM (Version 2015-05-01, kms-api.md §5.3): GetUser, CreateAccessKey,
//! ListAccessKeys, UpdateAccessKey, DeleteAccessKey.
//!
//! - A user has at most two access keys: a third CreateAccessKey answers
//!   `LimitExceeded.User.AccessKey`. Unknown users answer
//!   `EntityNotExist.User` (404), unknown keys `EntityNotExist.User.AccessKey`
//!   (404). `Status` is `Active` or `Inactive`.
//! - The keys **authenticate**: every RAM user key is in the access key
//!   registry the server and [`crate::LocalCloud::as_access_key`] consult,
//!   with principal `acs:ram::<account>:user/<name>` (so secret policies can
//!   name it). An Inactive key is refused with `InvalidAccessKeyId.Inactive`;
//!   a deleted one is gone (`InvalidAccessKeyId.NotFound`). The registry is
//!   updated after the change is durable.
//! - New keys are `LTAI` + 20 letters and digits, secrets 30 letters and
//!   digits. ListAccessKeys never shows a secret.

use rota_kms::SecretString;
use serde_json::{Value, json};

use super::{RamKey, RamUser, Row};
use crate::auth::Caller;
use crate::engine::{Engine, wire};
use crate::errors::ServiceError;
use crate::params::Params;

fn alnum(n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| A[rand::random_range(0..A.len())] as char)
        .collect()
}

/// A fresh access key pair.
pub(crate) fn new_key_pair() -> (String, SecretString) {
    (format!("LTAI{}", alnum(20)), SecretString::new(alnum(30)))
}

fn status_param(p: &Params) -> Result<String, ServiceError> {
    match p.req("Status")? {
        s @ ("Active" | "Inactive") => Ok(s.to_owned()),
        _ => Err(ServiceError::invalid(
            "Status",
            "must be Active or Inactive",
        )),
    }
}

impl Engine {
    fn ram_user<'a>(st: &'a super::TargetState, name: &str) -> Result<&'a RamUser, ServiceError> {
        st.ram
            .get(name)
            .ok_or_else(|| ServiceError::RamUserNotFound {
                user: name.to_owned(),
            })
    }

    /// Replaces the user's keys in the access key registry.
    pub(crate) fn sync_ram_keys(&self, user: &RamUser) {
        let principal = self.world.user_principal(&user.name);
        self.replace_user_keys(
            &user.name,
            user.keys
                .iter()
                .map(|k| (k.id.clone(), k.secret.clone(), k.status == "Active"))
                .collect(),
            &principal,
        );
    }

    /// Applies `change` to a copy of the user, makes it durable, installs it
    /// and refreshes the registry.
    async fn ram_change<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut RamUser) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let mut st = self.targets.state.lock().await;
        let mut next = Self::ram_user(&st, name)?.clone();
        let out = change(&mut next)?;
        self.targets.persist(&[Row::Ram(&next)]).await?;
        self.sync_ram_keys(&next);
        st.ram.insert(name.to_owned(), next);
        Ok(out)
    }

    /// Installs a key pair chosen by the caller (managed rotation generates
    /// it, stores it as ACSPending, then installs it). Idempotent: a key
    /// with this id already there is success.
    pub(crate) async fn ram_install_key(
        &self,
        name: &str,
        id: &str,
        secret: &SecretString,
    ) -> Result<(), ServiceError> {
        let now = self.now_secs();
        self.ram_change(name, |u| {
            if u.keys.iter().any(|k| k.id == id) {
                return Ok(());
            }
            if u.keys.len() >= 2 {
                return Err(ServiceError::RamAccessKeyLimit {
                    user: name.to_owned(),
                });
            }
            u.keys.push(RamKey {
                id: id.to_owned(),
                secret: secret.clone(),
                status: "Active".into(),
                created: now,
            });
            Ok(())
        })
        .await
    }

    /// Deletes a key; a missing key is success when `idempotent`.
    pub(crate) async fn ram_delete_key(
        &self,
        name: &str,
        id: &str,
        idempotent: bool,
    ) -> Result<(), ServiceError> {
        self.ram_change(name, |u| {
            let before = u.keys.len();
            u.keys.retain(|k| k.id != id);
            if u.keys.len() == before && !idempotent {
                return Err(ServiceError::RamAccessKeyNotFound {
                    user: name.to_owned(),
                    access_key_id: id.to_owned(),
                });
            }
            Ok(())
        })
        .await
    }

    /// The ids of a user's keys, oldest first.
    pub(crate) async fn ram_key_ids(&self, name: &str) -> Result<Vec<String>, ServiceError> {
        let st = self.targets.state.lock().await;
        Ok(Self::ram_user(&st, name)?
            .keys
            .iter()
            .map(|k| k.id.clone())
            .collect())
    }

    pub(crate) async fn ram_get_user(&self, p: &Params) -> Result<Value, ServiceError> {
        let name = p.req("UserName")?;
        let st = self.targets.state.lock().await;
        let u = Self::ram_user(&st, name)?;
        Ok(json!({"User": {
            "UserName": u.name,
            "DisplayName": u.name,
            "UserId": format!("{}", 200_000_000_000_000_u64 + u64::from(crc(&u.name))),
            "CreateDate": wire(u.created),
        }}))
    }

    pub(crate) async fn ram_create_access_key(
        &self,
        _caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = p.req("UserName")?;
        let (id, secret) = new_key_pair();
        let now = self.now_secs();
        let created = self
            .ram_change(name, |u| {
                if u.keys.len() >= 2 {
                    return Err(ServiceError::RamAccessKeyLimit {
                        user: name.to_owned(),
                    });
                }
                u.keys.push(RamKey {
                    id: id.clone(),
                    secret: secret.clone(),
                    status: "Active".into(),
                    created: now,
                });
                Ok(now)
            })
            .await?;
        tracing::info!(ram.user = %name, ram.access_key_id = %id, "ram access key created");
        Ok(json!({"AccessKey": {
            "AccessKeyId": id,
            "AccessKeySecret": secret.expose_secret(),
            "Status": "Active",
            "CreateDate": wire(created),
        }}))
    }

    pub(crate) async fn ram_list_access_keys(&self, p: &Params) -> Result<Value, ServiceError> {
        let name = p.req("UserName")?;
        let st = self.targets.state.lock().await;
        let u = Self::ram_user(&st, name)?;
        let keys: Vec<Value> = u
            .keys
            .iter()
            .map(|k| {
                json!({
                    "AccessKeyId": k.id,
                    "Status": k.status,
                    "CreateDate": wire(k.created),
                })
            })
            .collect();
        Ok(json!({"AccessKeys": {"AccessKey": keys}}))
    }

    pub(crate) async fn ram_update_access_key(
        &self,
        _caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = p.req("UserName")?;
        let id = p.req("UserAccessKeyId")?;
        let status = status_param(p)?;
        self.ram_change(name, |u| {
            let k = u.keys.iter_mut().find(|k| k.id == id).ok_or_else(|| {
                ServiceError::RamAccessKeyNotFound {
                    user: name.to_owned(),
                    access_key_id: id.to_owned(),
                }
            })?;
            k.status = status;
            Ok(())
        })
        .await?;
        Ok(json!({}))
    }

    pub(crate) async fn ram_delete_access_key(
        &self,
        _caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = p.req("UserName")?;
        let id = p.req("UserAccessKeyId")?;
        self.ram_delete_key(name, id, false).await?;
        tracing::info!(ram.user = %name, ram.access_key_id = %id, "ram access key deleted");
        Ok(json!({}))
    }
}

/// A small stable checksum for synthetic user ids.
fn crc(s: &str) -> u32 {
    s.bytes().fold(2_166_136_261_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    })
}
