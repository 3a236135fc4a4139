//! `rds-account` against RDS instances bound to the real servers of every
//! development and CI machine: PostgreSQL on 127.0.0.1:5432 (user postgres)
//! and MariaDB on 127.0.0.1:3306 (user root). Each test makes uniquely named
//! roles or users and drops them at the end, passed or not.
//!
//! MariaDB proves passwords by logging in. PostgreSQL on these machines
//! trusts loopback logins (pg_hba), so a login proves nothing; the test
//! checks the password against the role's SCRAM-SHA-256 verifier in
//! `pg_authid`, which is the check a `scram-sha-256` login makes.

use mysql_async::prelude::Queryable as _;
use rota_local::targets::scram_sha_256_matches as scram_matches;
use serde_json::json;

use crate::common::{env_world, request};
use crate::plugins::{rotate_with_crash_then_resume, rotated, value};

use rota_test_support::db::{MY_URL, PG_URL, pg, pg_verifier, unique, with_cleanup};

/// Whether `user` logs in to MariaDB with `password`.
async fn my_login(user: &str, password: &str) -> bool {
    rota_test_support::db::my_login(user, password)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_account_rotates_a_real_postgresql_role() {
    let role = unique("rs");
    let r = role.clone();
    with_cleanup(
        async move {
            let world = format!(
                "account_id = \"1234567890123456\"\nregion = \"cn-hangzhou\"\nrds_instance \"pgm-rs0000000001\" {{\n  engine = \"PostgreSQL\"\n  bind = \"{PG_URL}\"\n  account \"{r}\" {{\n    password = \"Pg-Initial-Pass1\"\n  }}\n}}\n"
            );
            let e = env_world(Some(&world)).await;
            assert!(scram_matches(&pg_verifier(&r).await, "Pg-Initial-Pass1"));
            e.create("db/pg", &json!({"username": r, "password": "Pg-Initial-Pass1"}).to_string()).await;
            let settings = json!({"instance_id": "pgm-rs0000000001"});
            let (rotator, _) = e.rotator(vec![e.shipped("rds-account")]);
            let out = rotator
                .rotate(&request("db/pg", "rds-account", settings.clone(), "rota-t-1", 1))
                .await
                .unwrap();
            assert_eq!(out, rotated("rota-t-1"));
            let cur = value(&e.stage("db/pg", "ACSCurrent").await.unwrap().1);
            let pw = cur["password"].as_str().unwrap().to_owned();
            let verifier = pg_verifier(&r).await;
            assert!(scram_matches(&verifier, &pw), "the new password is the role's");
            assert!(!scram_matches(&verifier, "Pg-Initial-Pass1"), "the old one is not");

            // A crash after set: the role already has the candidate; the next run finishes.
            let out = rotate_with_crash_then_resume(&e, "rds-account", "db/pg", settings, "rota-t-2").await;
            assert_eq!(out, rotated("rota-t-2"));
            let cur = value(&e.stage("db/pg", "ACSCurrent").await.unwrap().1);
            let verifier = pg_verifier(&r).await;
            assert!(scram_matches(&verifier, cur["password"].as_str().unwrap()));
            assert!(!scram_matches(&verifier, &pw));
        },
        async {
            let _ = pg().await.batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\"")).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_account_dual_mode_on_real_mariadb_keeps_one_login_working() {
    let a = unique("ra");
    let b = unique("rb");
    let (ua, ub) = (a.clone(), b.clone());
    with_cleanup(
        async move {
            let world = format!(
                "account_id = \"1234567890123456\"\nregion = \"cn-hangzhou\"\nrds_instance \"rm-rs0000000001\" {{\n  engine = \"MariaDB\"\n  bind = \"{MY_URL}\"\n  account \"{ua}\" {{\n    password = \"My-Initial-PassA1\"\n  }}\n  account \"{ub}\" {{\n    password = \"My-Initial-PassB1\"\n  }}\n}}\n"
            );
            let e = env_world(Some(&world)).await;
            assert!(my_login(&ua, "My-Initial-PassA1").await);
            e.create("db/my", &json!({"username": ua, "password": "My-Initial-PassA1"}).to_string()).await;
            let settings = json!({"instance_id": "rm-rs0000000001", "mode": "dual", "accounts": [ua, ub]});
            let (rotator, _) = e.rotator(vec![e.shipped("rds-account")]);
            rotator
                .rotate(&request("db/my", "rds-account", settings.clone(), "rota-t-1", 1))
                .await
                .unwrap();
            let cur = value(&e.stage("db/my", "ACSCurrent").await.unwrap().1);
            assert_eq!(cur["username"], ub.as_str());
            assert!(my_login(&ub, cur["password"].as_str().unwrap()).await, "the new current logs in");
            assert!(my_login(&ua, "My-Initial-PassA1").await, "the previous account still works");
            assert!(!my_login(&ub, "My-Initial-PassB1").await, "b's old password is gone");

            let out = rotate_with_crash_then_resume(&e, "rds-account", "db/my", settings, "rota-t-2").await;
            assert_eq!(out, rotated("rota-t-2"));
            let cur2 = value(&e.stage("db/my", "ACSCurrent").await.unwrap().1);
            assert_eq!(cur2["username"], ua.as_str());
            assert!(my_login(&ua, cur2["password"].as_str().unwrap()).await);
            assert!(my_login(&ub, cur["password"].as_str().unwrap()).await, "the previous account still works");
        },
        async {
            if let Ok(mut c) = mysql_async::Conn::from_url(MY_URL).await {
                for u in [&a, &b] {
                    let _ = c.query_drop(format!("DROP USER IF EXISTS '{u}'@'%'")).await;
                }
                let _ = c.disconnect().await;
            }
        },
    )
    .await;
}
