//! RDS (Version 2014-08-15, kms-api.md §5.2): DescribeDBInstanceAttribute,
//! DescribeAccounts, CreateAccount, ResetAccountPassword,
//! GrantAccountPrivilege.
//!
//! Rules and codes (RDS's own where its error centre names one; the
//! emulator's choice where it is silent):
//! - unknown instance → `InvalidDBInstanceId.NotFound` (404); unknown
//!   account → `InvalidAccountName.NotFound` (404);
//! - CreateAccount with a name in use → `InvalidAccountName.Duplicate`;
//!   a name that is not 2–32 lower-case letters, digits or `_`, starting
//!   with a letter and ending with a letter or digit →
//!   `InvalidAccountName.Malformed`;
//! - a password that is not 8–32 characters, or does not use three of the
//!   four classes (upper, lower, digit, special), or has a character
//!   outside letters, digits and ``!@#$&%^*()_+-=`` →
//!   `InvalidAccountPassword.Malformed` (400);
//! - `AccountType` is `Normal` (default) or `Super`; `AccountPrivilege` is
//!   `ReadWrite`, `ReadOnly`, `DDLOnly`, `DMLOnly` or `DBOwner`.
//!
//! On an instance bound to a real server ([`super::bound`]) the statement
//! runs there first; the emulated state changes only once it succeeded, and
//! a failure answers `InternalError` (500) naming the server's error.

use rota_kms::SecretString;
use serde_json::{Value, json};

use super::bound::{self, BoundOp};
use super::{RdsAccount, RdsInstance, Row, redact_url};
use crate::auth::Caller;
use crate::engine::{Engine, wire};
use crate::errors::ServiceError;
use crate::params::Params;
use crate::world::valid_rds_account;

/// The special characters RDS passwords may hold.
pub(crate) const SPECIALS: &str = "!@#$&%^*()_+-=";

/// RDS's password rules; the error says which one failed.
pub(crate) fn check_password(pw: &str) -> Result<(), &'static str> {
    let n = pw.chars().count();
    if !(8..=32).contains(&n) {
        return Err("must be 8 to 32 characters long");
    }
    if !pw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c))
    {
        return Err("may contain only letters, digits and the special characters !@#$&%^*()_+-=");
    }
    let classes = [
        pw.chars().any(|c| c.is_ascii_uppercase()),
        pw.chars().any(|c| c.is_ascii_lowercase()),
        pw.chars().any(|c| c.is_ascii_digit()),
        pw.chars().any(|c| SPECIALS.contains(c)),
    ];
    if classes.iter().filter(|x| **x).count() < 3 {
        return Err(
            "must contain at least three of: upper-case letters, lower-case letters, digits, special characters",
        );
    }
    Ok(())
}

fn password_param(p: &Params) -> Result<SecretString, ServiceError> {
    let pw = p.req("AccountPassword")?;
    check_password(pw).map_err(|why| ServiceError::DbPasswordMalformed {
        reason: why.to_owned(),
    })?;
    Ok(SecretString::new(pw))
}

const PRIVILEGES: &[&str] = &["ReadWrite", "ReadOnly", "DDLOnly", "DMLOnly", "DBOwner"];

impl Engine {
    fn rds_instance<'a>(
        st: &'a super::TargetState,
        id: &str,
    ) -> Result<&'a RdsInstance, ServiceError> {
        st.rds
            .get(id)
            .ok_or_else(|| ServiceError::DbInstanceNotFound {
                instance_id: id.to_owned(),
            })
    }

    /// Runs `op` on the bound server of `instance_id`, if it has one.
    async fn rds_bound(&self, inst: &RdsInstance, op: BoundOp<'_>) -> Result<(), ServiceError> {
        let Some(url) = self.targets.bind(&inst.id) else {
            return Ok(());
        };
        bound::apply(inst.engine, url, op).await.map_err(|reason| {
            tracing::warn!(rds.instance_id = %inst.id, %reason, "bound database refused a change");
            ServiceError::BoundDatabase {
                instance_id: inst.id.clone(),
                reason,
            }
        })
    }

    /// Sets (or, with `create`, creates when missing) an account's password:
    /// on the bound server first, then durably in the emulated state.
    pub(crate) async fn rds_set_account(
        &self,
        instance_id: &str,
        account: &str,
        password: &SecretString,
        create: Option<&str>,
    ) -> Result<(), ServiceError> {
        let mut st = self.targets.state.lock().await;
        let inst = Self::rds_instance(&st, instance_id)?;
        let exists = inst.accounts.contains_key(account);
        if !exists && create.is_none() {
            return Err(ServiceError::DbAccountNotFound {
                instance_id: instance_id.to_owned(),
                account: account.to_owned(),
            });
        }
        let op = match create {
            Some(ty) => BoundOp::Ensure {
                account,
                password,
                privileged: ty == "Super",
            },
            None => BoundOp::SetPassword { account, password },
        };
        self.rds_bound(inst, op).await?;
        let mut next = inst.clone();
        let now = self.now_secs();
        match next.accounts.get_mut(account) {
            Some(a) => {
                a.password = password.clone();
                a.changed = now;
            }
            None => {
                next.accounts.insert(
                    account.to_owned(),
                    RdsAccount {
                        password: password.clone(),
                        account_type: create.unwrap_or("Normal").to_owned(),
                        description: String::new(),
                        privileges: Vec::new(),
                        changed: now,
                    },
                );
            }
        }
        self.targets.persist(&[Row::Rds(&next)]).await?;
        st.rds.insert(instance_id.to_owned(), next);
        Ok(())
    }

    /// Creates on their bound servers the accounts the world just seeded.
    pub(crate) async fn rds_seed_bound(&self, seeds: Vec<super::BoundSeed>) -> Result<(), String> {
        for s in seeds {
            let (inst, account) = {
                let st = self.targets.state.lock().await;
                let inst = st.rds[&s.instance_id].clone();
                let account = inst.accounts[&s.account].clone();
                (inst, account)
            };
            self.rds_bound(
                &inst,
                BoundOp::Ensure {
                    account: &s.account,
                    password: &account.password,
                    privileged: account.account_type == "Super",
                },
            )
            .await
            .map_err(|e| {
                format!(
                    "rds_instance {:?} account {:?}: {e}",
                    s.instance_id, s.account
                )
            })?;
        }
        Ok(())
    }

    pub(crate) async fn rds_describe_instance(&self, p: &Params) -> Result<Value, ServiceError> {
        let id = p.req("DBInstanceId")?;
        let st = self.targets.state.lock().await;
        let inst = Self::rds_instance(&st, id)?;
        let (conn, port) = match self.targets.bind(id) {
            Some(url) => {
                let r = redact_url(url.expose_secret());
                let hostport = r
                    .split_once("://")
                    .map_or(r.as_str(), |(_, h)| h)
                    .to_owned();
                let (h, port) = hostport
                    .rsplit_once(':')
                    .map(|(h, p)| (h.to_owned(), p.to_owned()))
                    .unwrap_or((hostport.clone(), String::new()));
                (h, port)
            }
            None => (
                format!("{id}.rds.aliyuncs.com"),
                if inst.engine.is_mysql() {
                    "3306"
                } else {
                    "5432"
                }
                .to_owned(),
            ),
        };
        Ok(json!({
            "Items": {"DBInstanceAttribute": [{
                "DBInstanceId": inst.id,
                "Engine": inst.engine.as_str(),
                "RegionId": self.world.region,
                "DBInstanceStatus": "Running",
                "DBInstanceType": "Primary",
                "DBInstanceNetType": "Intranet",
                "ConnectionString": conn,
                "Port": port,
                "CreationTime": wire(inst.created),
                "AccountMaxQuantity": 500,
            }]}
        }))
    }

    pub(crate) async fn rds_describe_accounts(&self, p: &Params) -> Result<Value, ServiceError> {
        let id = p.req("DBInstanceId")?;
        let page = p.int_in("PageNumber", 1, i64::from(u32::MAX), 1)?;
        let size = p.int_in("PageSize", 30, 200, 30)?;
        let st = self.targets.state.lock().await;
        let inst = Self::rds_instance(&st, id)?;
        let all: Vec<Value> = inst
            .accounts
            .iter()
            .filter(|(name, _)| p.opt("AccountName").is_none_or(|n| n == name.as_str()))
            .map(|(name, a)| {
                json!({
                    "DBInstanceId": inst.id,
                    "AccountName": name,
                    "AccountStatus": "Available",
                    "AccountType": a.account_type,
                    "AccountDescription": a.description,
                    "PrivExceeded": "0",
                    "DatabasePrivileges": {"DatabasePrivilege": a.privileges.iter().map(|(db, pr)| json!({
                        "DBName": db,
                        "AccountPrivilege": pr,
                        "AccountPrivilegeDetail": "",
                    })).collect::<Vec<_>>()},
                })
            })
            .collect();
        let total = all.len();
        let items: Vec<Value> = all
            .into_iter()
            .skip(((page - 1) * size) as usize)
            .take(size as usize)
            .collect();
        Ok(json!({
            "Accounts": {"DBInstanceAccount": items},
            "PageNumber": page,
            "TotalRecordCount": total,
        }))
    }

    pub(crate) async fn rds_create_account(
        &self,
        _caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let id = p.req("DBInstanceId")?;
        let name = p.req("AccountName")?;
        if !valid_rds_account(name) {
            return Err(ServiceError::DbAccountNameMalformed {
                account: name.to_owned(),
            });
        }
        let password = password_param(p)?;
        let ty = p.opt("AccountType").unwrap_or("Normal");
        if ty != "Normal" && ty != "Super" {
            return Err(ServiceError::invalid(
                "AccountType",
                "must be Normal or Super",
            ));
        }
        let description = p.opt("AccountDescription").unwrap_or_default().to_owned();
        {
            let st = self.targets.state.lock().await;
            if Self::rds_instance(&st, id)?.accounts.contains_key(name) {
                return Err(ServiceError::DbAccountExists {
                    account: name.to_owned(),
                });
            }
        }
        self.rds_set_account(id, name, &password, Some(ty)).await?;
        if !description.is_empty() {
            let mut st = self.targets.state.lock().await;
            let mut next = Self::rds_instance(&st, id)?.clone();
            if let Some(a) = next.accounts.get_mut(name) {
                a.description = description;
            }
            self.targets.persist(&[Row::Rds(&next)]).await?;
            st.rds.insert(id.to_owned(), next);
        }
        tracing::info!(rds.instance_id = %id, rds.account = %name, "rds account created");
        Ok(json!({}))
    }

    pub(crate) async fn rds_reset_password(
        &self,
        _caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let id = p.req("DBInstanceId")?;
        let name = p.req("AccountName")?;
        let password = password_param(p)?;
        self.rds_set_account(id, name, &password, None).await?;
        tracing::info!(rds.instance_id = %id, rds.account = %name, "rds account password reset");
        Ok(json!({}))
    }

    pub(crate) async fn rds_grant(
        &self,
        _caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let id = p.req("DBInstanceId")?;
        let name = p.req("AccountName")?;
        let db = p.req("DBName")?;
        let privilege = p.req("AccountPrivilege")?;
        if !PRIVILEGES.contains(&privilege) {
            return Err(ServiceError::invalid(
                "AccountPrivilege",
                format!("must be one of {}", PRIVILEGES.join(", ")),
            ));
        }
        let mut st = self.targets.state.lock().await;
        let inst = Self::rds_instance(&st, id)?;
        if !inst.accounts.contains_key(name) {
            return Err(ServiceError::DbAccountNotFound {
                instance_id: id.to_owned(),
                account: name.to_owned(),
            });
        }
        self.rds_bound(
            inst,
            BoundOp::Grant {
                account: name,
                db,
                privilege,
            },
        )
        .await?;
        let mut next = inst.clone();
        if let Some(a) = next.accounts.get_mut(name) {
            a.privileges.retain(|(d, _)| d != db);
            a.privileges.push((db.to_owned(), privilege.to_owned()));
        }
        self.targets.persist(&[Row::Rds(&next)]).await?;
        st.rds.insert(id.to_owned(), next);
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        assert!(check_password("Abcdef12").is_ok());
        assert!(check_password("abcdef1!").is_ok());
        assert!(check_password("Abc1!").is_err());
        assert!(check_password(&"Aa1!".repeat(9)).is_err());
        assert!(check_password("abcdefgh").is_err());
        assert!(check_password("abcdefg1").is_err());
        assert!(check_password("Abcdef1'").is_err());
        assert!(check_password("Abcdef1 ").is_err());
    }
}
