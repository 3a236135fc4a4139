//! RDS instances bound to the real servers of every development and CI
//! machine: PostgreSQL on 127.0.0.1:5432 (user postgres) and MariaDB on
//! 127.0.0.1:3306 (user root). Each test creates uniquely named roles or
//! users and drops them at the end, whether it passed or not.
//!
//! **What is proved.**
//! - MariaDB: real logins. A user created with a password must give it
//!   (these users match `'name'@'%'`; the server has no anonymous users), so
//!   "the new password logs in and the old one does not" is checked by
//!   connecting as the user with each.
//! - PostgreSQL: this machine's `pg_hba.conf` trusts every local and
//!   loopback connection, so a login would succeed with any password and
//!   proves nothing; a test cannot change the server's configuration. The
//!   test instead reads the role's SCRAM-SHA-256 verifier from `pg_authid`
//!   and checks the password against it (PBKDF2-HMAC-SHA256 → ClientKey →
//!   StoredKey, and ServerKey, as RFC 5802 and PostgreSQL compute them):
//!   exactly the check a `scram-sha-256` pg_hba line makes at login. The new
//!   password matches the verifier, the old one does not.

use rota_kms::kms::*;
use rota_kms::{KmsClient, SecretString};
use rota_local::targets::scram_sha_256_matches as scram_matches;

use crate::common::env_world;

use rota_test_support::db::{
    MY_URL, PG_URL, my_drop, my_login, pg_drop, pg_verifier, unique, with_cleanup,
};

fn rds(name: &str, instance: &str, sub: &str, accounts: &[(&str, &str)]) -> CreateSecret {
    let accounts: Vec<_> = accounts
        .iter()
        .map(|(n, p)| serde_json::json!({"AccountName": n, "AccountPassword": p}))
        .collect();
    CreateSecret {
        secret_name: name.into(),
        secret_data: SecretString::new(serde_json::json!({"Accounts": accounts}).to_string()),
        version_id: "v1".into(),
        secret_type: Some("Rds".into()),
        extended_config: Some(format!(
            r#"{{"SecretSubType":"{sub}","DBInstanceId":"{instance}"}}"#
        )),
        ..CreateSecret::default()
    }
}

async fn stage_value(c: &KmsClient, name: &str, stage: &str) -> (String, String) {
    let v = c
        .send(&GetSecretValue {
            secret_name: name.into(),
            version_stage: Some(stage.into()),
            ..GetSecretValue::default()
        })
        .await
        .unwrap();
    let j: serde_json::Value = serde_json::from_str(v.secret_data.expose_secret()).unwrap();
    (
        j["AccountName"].as_str().unwrap().to_owned(),
        j["AccountPassword"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bound_rotation_changes_the_real_role() {
    let role = unique("rota_it_");
    let clone = format!("{role}_clone");
    let (r, c2) = (role.clone(), clone.clone());
    with_cleanup(
        async move {
            let world = format!(
                "{}\nrds_instance \"pgm-it00000000001\" {{\n  engine = \"PostgreSQL\"\n  bind = \"{PG_URL}\"\n  account \"{r}\" {{\n    password = \"Pg-Initial-Pass1\"\n  }}\n}}\n",
                crate::common::TEST_WORLD
            );
            let e = env_world(&world).await;
            let c = e.client();
            // Seeding created the role with the declared password.
            assert!(scram_matches(&pg_verifier(&r).await, "Pg-Initial-Pass1"));
            // SingleUser.
            c.send(&rds("pg/single", "pgm-it00000000001", "SingleUser", &[(&r, "Pg-Initial-Pass1")]))
                .await
                .unwrap();
            c.send(&RotateSecret { secret_name: "pg/single".into(), version_id: "v2".into() })
                .await
                .unwrap();
            let (name, new_pw) = stage_value(&c, "pg/single", "ACSCurrent").await;
            let (_, old_pw) = stage_value(&c, "pg/single", "ACSPrevious").await;
            assert_eq!((name.as_str(), old_pw.as_str()), (r.as_str(), "Pg-Initial-Pass1"));
            let v = pg_verifier(&r).await;
            assert!(scram_matches(&v, &new_pw), "the role does not hold ACSCurrent");
            assert!(!scram_matches(&v, &old_pw), "the role still accepts the old password");
            // DoubleUsers: the clone is created and takes the new password;
            // the account in ACSPrevious keeps its password (the handover).
            c.send(&rds("pg/double", "pgm-it00000000001", "DoubleUsers", &[(&r, &new_pw)]))
                .await
                .unwrap();
            c.send(&RotateSecret { secret_name: "pg/double".into(), version_id: "v2".into() })
                .await
                .unwrap();
            let (cur_name, cur_pw) = stage_value(&c, "pg/double", "ACSCurrent").await;
            let (prev_name, prev_pw) = stage_value(&c, "pg/double", "ACSPrevious").await;
            assert_eq!((cur_name.as_str(), prev_name.as_str()), (c2.as_str(), r.as_str()));
            assert!(scram_matches(&pg_verifier(&c2).await, &cur_pw));
            assert!(scram_matches(&pg_verifier(&r).await, &prev_pw), "both work during the handover");
            // The next rotation resets the other account.
            c.send(&RotateSecret { secret_name: "pg/double".into(), version_id: "v3".into() })
                .await
                .unwrap();
            let (cur_name, cur_pw) = stage_value(&c, "pg/double", "ACSCurrent").await;
            assert_eq!(cur_name, r);
            assert!(scram_matches(&pg_verifier(&r).await, &cur_pw));
            assert!(!scram_matches(&pg_verifier(&r).await, &prev_pw));
            assert!(scram_matches(&pg_verifier(&c2).await, &stage_value(&c, "pg/double", "ACSPrevious").await.1));
        },
        pg_drop(&[role, clone]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_bound_rotation_changes_the_real_user() {
    let user = unique("rota_it_");
    let clone = format!("{user}_clone");
    let (u, c2) = (user.clone(), clone.clone());
    with_cleanup(
        async move {
            let world = format!(
                "{}\nrds_instance \"rm-itmariadb00001\" {{\n  engine = \"MariaDB\"\n  bind = \"{MY_URL}\"\n  account \"{u}\" {{\n    password = \"My-Initial-Pass1\"\n  }}\n}}\n",
                crate::common::TEST_WORLD
            );
            let e = env_world(&world).await;
            let c = e.client();
            my_login(&u, "My-Initial-Pass1").await.unwrap();
            assert!(my_login(&u, "not-the-password").await.is_err(), "the server does not check passwords");
            c.send(&rds("my/single", "rm-itmariadb00001", "SingleUser", &[(&u, "My-Initial-Pass1")]))
                .await
                .unwrap();
            c.send(&RotateSecret { secret_name: "my/single".into(), version_id: "v2".into() })
                .await
                .unwrap();
            let (_, new_pw) = stage_value(&c, "my/single", "ACSCurrent").await;
            let (_, old_pw) = stage_value(&c, "my/single", "ACSPrevious").await;
            my_login(&u, &new_pw).await.expect("the new password logs in");
            let refused = my_login(&u, &old_pw).await.unwrap_err();
            assert!(refused.contains("1045") || refused.contains("Access denied"), "{refused}");
            // DoubleUsers: both accounts log in during the handover.
            c.send(&rds("my/double", "rm-itmariadb00001", "DoubleUsers", &[(&u, &new_pw)]))
                .await
                .unwrap();
            c.send(&RotateSecret { secret_name: "my/double".into(), version_id: "v2".into() })
                .await
                .unwrap();
            let (cur_name, cur_pw) = stage_value(&c, "my/double", "ACSCurrent").await;
            let (prev_name, prev_pw) = stage_value(&c, "my/double", "ACSPrevious").await;
            assert_eq!((cur_name.as_str(), prev_name.as_str()), (c2.as_str(), u.as_str()));
            my_login(&c2, &cur_pw).await.expect("the clone logs in with ACSCurrent");
            my_login(&u, &prev_pw).await.expect("the previous account still logs in");
            // An RDS account created through the API is a real user too.
            let api = e.api();
            let extra = format!("{u}_x");
            api.call("rds", "", "CreateAccount", [("DBInstanceId", "rm-itmariadb00001"), ("AccountName", extra.as_str()), ("AccountPassword", "Created-Pass1")])
                .await
                .unwrap();
            my_login(&extra, "Created-Pass1").await.unwrap();
            my_drop(&[extra]).await;
        },
        my_drop(&[user, clone]),
    )
    .await;
}
