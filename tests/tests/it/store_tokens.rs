//! Replicas starting at the same instant store the same admin token at the same instant:
//! every one of them must succeed (PostgreSQL reports the clash on the unique token hash as
//! a violation unless the store settles it).

use fleet_protocol::api::TokenScope;
use fleet_server::store::postgres::PgStore;
use fleet_server::store::{OperatorTokenRecord, PageRequest, TokenStore as _};

const REPLICAS: usize = 4;
const ROUNDS: usize = 20;

fn admin_token(round: usize) -> OperatorTokenRecord {
    OperatorTokenRecord {
        name: "admin".into(),
        scope: TokenScope::Admin,
        token_hash: format!("hash-of-round-{round}"),
        mqtt: false,
        broker_password_hash: None,
        created_at_ms: 1,
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn replicas_storing_the_same_admin_token_at_once_all_succeed_on_postgres() {
    let url = fleet_tests::fresh_postgres().await;
    let mut stores = Vec::new();
    for _ in 0..REPLICAS {
        stores.push(PgStore::connect(&url).await.expect("connects and migrates"));
    }
    for round in 0..ROUNDS {
        let record = admin_token(round);
        let puts = stores.iter().map(|store| store.put_operator_token(&record));
        for (replica, result) in futures_util::future::join_all(puts).await.into_iter().enumerate() {
            result.unwrap_or_else(|e| panic!("round {round}, replica {replica}: {e}"));
        }
        let stored = stores[0].list_operator_tokens(&PageRequest { limit: 10, cursor: None }).await.unwrap();
        assert_eq!(stored.items.len(), 1, "one admin token");
        assert_eq!(stored.items[0].token_hash, record.token_hash, "round {round}");
    }
}
