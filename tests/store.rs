//! The store contract: the same tests against SQLite (a file in a temporary directory) and
//! PostgreSQL (a schema of its own in the machine's database, dropped afterwards), through the
//! functions the director uses.
//!
//! PostgreSQL is `MCP_DIRECTOR_TEST_POSTGRES_URL` (default: the machine's, trust auth, database
//! `test`). Unreachable, its tests fail under CI (`CI` set) and are skipped loudly elsewhere.

mod common;

use mcp_director::analytics::{self, Record, Recorder};
use mcp_director::jsonrpc::ErrorObject;
use mcp_director::oauth::grants::{self, Claims, Client, Code, Grant, Pending, Redeemed, Rotated};
use mcp_director::store::Store;
use mcp_director::tasks::{self, Status, Task};
use mcp_director_api::models::AnalyticsRowKind;
use serde_json::value::RawValue;
use std::time::Duration;

/// A store the test owns, and what is removed when it ends (held, not read: dropping it
/// removes it).
struct Db {
    store: Store,
    url: String,
    _cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema(#[allow(dead_code)] common::PgSchema),
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = Store::default_url(dir.path()).unwrap();
        let store = Store::open(&url).await.unwrap();
        Db {
            store,
            url,
            _cleanup: Cleanup::Dir(dir),
        }
    }

    async fn postgres() -> Option<Db> {
        let schema = common::PgSchema::new().await?;
        let store = Store::open(&schema.url).await.unwrap();
        Some(Db {
            store,
            url: schema.url.clone(),
            _cleanup: Cleanup::Schema(schema),
        })
    }
}

/// Each contract test once per backend: `sqlite::name` and `postgres::name`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::Db::sqlite().await;
                    assert_eq!(db.store.backend(), "sqlite");
                    super::$name(&db).await;
                    db.store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = super::Db::postgres().await else { return };
                    assert_eq!(db.store.backend(), "postgres");
                    super::$name(&db).await;
                    db.store.close().await;
                }
            )*
        }
    };
}

contract!(
    migrations_apply_once,
    tasks_are_created_read_and_listed_per_owner,
    task_lifecycle_is_enforced_by_the_store,
    of_concurrent_transitions_one_wins,
    leases_counts_and_expiry,
    oauth_clients,
    oauth_pending_requests,
    oauth_codes_redeem_once,
    oauth_tokens_rotate_and_replays_revoke,
    analytics_rollups_are_written_and_read,
);

/// Later than 2^31 ms (2038-01-19): PostgreSQL's INTEGER would overflow where BIGINT does not.
const MS: i64 = 2_200_000_000_000;

fn task(id: &str, owner: &str, created_ms: i64) -> Task {
    Task {
        id: id.into(),
        owner: owner.into(),
        status: Status::Working,
        message: None,
        created_ms,
        updated_ms: created_ms,
        ttl_ms: Some(60_000),
        poll_interval_ms: tasks::POLL_INTERVAL_MS,
        outcome: None,
        node: Some("n1".into()),
    }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_string()).unwrap()
}

async fn migrations_apply_once(db: &Db) {
    assert_eq!(
        db.store.schema_version().await.unwrap(),
        Store::latest_version()
    );
    db.store.check().await.unwrap();
    // A second process (or replica) opening the same store applies nothing again.
    let again = Store::open(&db.url).await.unwrap();
    assert_eq!(
        again.schema_version().await.unwrap(),
        Store::latest_version()
    );
    let (applied,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM schema_migrations")
        .fetch_one(again.pool())
        .await
        .unwrap();
    assert_eq!(applied, Store::latest_version());
    again.close().await;
}

async fn tasks_are_created_read_and_listed_per_owner(db: &Db) {
    let s = &db.store;
    let mut t = task("t2", "alice", MS + 2);
    t.ttl_ms = None;
    t.message = Some("starting ✓".into());
    tasks::create(s, &t, "n1").await.unwrap();
    tasks::create(s, &task("t1", "alice", MS + 1), "n1")
        .await
        .unwrap();
    tasks::create(s, &task("t3", "alice", MS + 2), "n1")
        .await
        .unwrap();
    tasks::create(s, &task("b1", "bob", MS), "n1")
        .await
        .unwrap();
    // The id is the key: a second create of it fails, whoever asks.
    assert!(
        tasks::create(s, &task("t1", "bob", MS), "n1")
            .await
            .is_err()
    );

    let got = tasks::get(s, "alice", "t2").await.unwrap().unwrap();
    assert_eq!(got.status, Status::Working);
    assert_eq!(got.message.as_deref(), Some("starting ✓"));
    assert_eq!((got.created_ms, got.updated_ms), (MS + 2, MS + 2));
    assert_eq!(got.ttl_ms, None);
    assert_eq!(got.poll_interval_ms, tasks::POLL_INTERVAL_MS);
    assert!(got.outcome.is_none());
    let got = tasks::get(s, "alice", "t1").await.unwrap().unwrap();
    assert_eq!(got.ttl_ms, Some(60_000));
    // Someone else's task is as absent as a missing one.
    assert!(tasks::get(s, "bob", "t2").await.unwrap().is_none());
    assert!(tasks::get(s, "alice", "nope").await.unwrap().is_none());

    let ids = |v: Vec<Task>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(tasks::list(s, "alice", 0, 10).await.unwrap()),
        ["t1", "t2", "t3"]
    );
    assert_eq!(ids(tasks::list(s, "alice", 1, 1).await.unwrap()), ["t2"]);
    assert!(tasks::list(s, "alice", 3, 10).await.unwrap().is_empty());
    assert_eq!(ids(tasks::list(s, "bob", 0, 10).await.unwrap()), ["b1"]);
}

async fn task_lifecycle_is_enforced_by_the_store(db: &Db) {
    let s = &db.store;
    tasks::create(s, &task("t", "o", MS), "n1").await.unwrap();
    let t = tasks::transition(s, "t", Status::InputRequired, Some("need input"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.status, Status::InputRequired);
    assert_eq!(t.message.as_deref(), Some("need input"));
    assert!(t.updated_ms > MS - MS / 2);
    // Not to the state it is in.
    assert!(
        tasks::transition(s, "t", Status::InputRequired, None, None)
            .await
            .unwrap()
            .is_none()
    );
    let t = tasks::transition(s, "t", Status::Working, None, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.status, t.message), (Status::Working, None));
    let done = Ok(raw(r#"{"content":[{"type":"text","text":"hi"}]}"#));
    let t = tasks::transition(s, "t", Status::Completed, None, Some(&done))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.status, Status::Completed);
    match &t.outcome {
        Some(Ok(v)) => assert_eq!(v.get(), r#"{"content":[{"type":"text","text":"hi"}]}"#),
        other => panic!("{other:?}"),
    }
    // Terminal: nothing moves it again, and what it answered stays.
    for next in [
        Status::Working,
        Status::InputRequired,
        Status::Failed,
        Status::Cancelled,
    ] {
        let refused = Err(ErrorObject::internal("late"));
        assert!(
            tasks::transition(s, "t", next, None, Some(&refused))
                .await
                .unwrap()
                .is_none()
        );
    }
    let t = tasks::get(s, "o", "t").await.unwrap().unwrap();
    assert!(matches!(t.outcome, Some(Ok(_))));

    // An error outcome comes back as an error.
    tasks::create(s, &task("e", "o", MS), "n1").await.unwrap();
    let failed = Err(ErrorObject::internal("upstream went away"));
    tasks::transition(s, "e", Status::Failed, Some("gone"), Some(&failed))
        .await
        .unwrap()
        .unwrap();
    let t = tasks::get(s, "o", "e").await.unwrap().unwrap();
    assert_eq!(t.status, Status::Failed);
    assert_eq!(
        t.outcome.unwrap().unwrap_err().message,
        "upstream went away"
    );
    assert!(
        tasks::transition(s, "missing", Status::Cancelled, None, None)
            .await
            .unwrap()
            .is_none()
    );
}

async fn of_concurrent_transitions_one_wins(db: &Db) {
    for round in 0..5 {
        let id = format!("race{round}");
        tasks::create(&db.store, &task(&id, "o", MS), "n1")
            .await
            .unwrap();
        let racers: Vec<_> = (0..12)
            .map(|i| {
                let (store, id) = (db.store.clone(), id.clone());
                let next = [Status::Completed, Status::Failed, Status::Cancelled][i % 3];
                tokio::spawn(async move {
                    let outcome = Ok(raw(&format!("{{\"racer\":{i}}}")));
                    let won = tasks::transition(&store, &id, next, None, Some(&outcome))
                        .await
                        .unwrap();
                    won.map(|t| (i, t.status))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for r in racers {
            winners.extend(r.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let (i, status) = winners[0];
        let stored = tasks::get(&db.store, "o", &id).await.unwrap().unwrap();
        assert_eq!(stored.status, status);
        match stored.outcome {
            Some(Ok(v)) => assert_eq!(v.get(), format!("{{\"racer\":{i}}}")),
            other => panic!("{other:?}"),
        }
    }
}

async fn leases_counts_and_expiry(db: &Db) {
    let s = &db.store;
    let now = analytics::now_ms();
    tasks::create(s, &task("w", "o", now), "n1").await.unwrap();
    tasks::create(s, &task("i", "o", now), "n1").await.unwrap();
    tasks::transition(s, "i", Status::InputRequired, None, None)
        .await
        .unwrap()
        .unwrap();
    tasks::create(s, &task("c", "o", now), "n1").await.unwrap();
    tasks::transition(s, "c", Status::Completed, None, Some(&Ok(raw("{}"))))
        .await
        .unwrap()
        .unwrap();
    let mut old = task("old", "o", now - 120_000);
    old.ttl_ms = Some(1_000);
    tasks::create(s, &old, "n1").await.unwrap();
    let mut forever = task("forever", "o", 0);
    forever.ttl_ms = None;
    tasks::create(s, &forever, "n1").await.unwrap();

    let counts = tasks::count_by_status(s).await.unwrap();
    assert_eq!(
        counts,
        [
            ("completed".into(), 1),
            ("input_required".into(), 1),
            ("working".into(), 3)
        ]
    );
    assert_eq!(tasks::purge_expired(s).await.unwrap(), 1);
    assert!(tasks::get(s, "o", "old").await.unwrap().is_none());
    // Leased tasks are their replica's while it renews them: no one else fails them.
    assert_eq!(tasks::fail_lapsed(s, now, i64::MAX).await.unwrap(), 0);
    let ids = ["w", "i", "c"].map(String::from);
    assert_eq!(
        tasks::renew(s, "n1", &ids).await.unwrap(),
        ["c"],
        "c is over"
    );
    assert_eq!(
        tasks::renew(s, "n2", &ids[..1]).await.unwrap(),
        ["w"],
        "not n2's to renew"
    );
    // Once the leases lapse (their replica gone), the survivors fail them.
    let later = analytics::now_ms() + tasks::LEASE_MS + 60_000;
    // Only tasks created before the given time (a director alone on its store fails what its
    // past left, never what it has just created).
    assert_eq!(
        tasks::fail_lapsed(s, later, now).await.unwrap(),
        1,
        "forever"
    );
    assert_eq!(tasks::fail_lapsed(s, later, i64::MAX).await.unwrap(), 2);
    let w = tasks::get(s, "o", "w").await.unwrap().unwrap();
    assert_eq!(w.status, Status::Failed);
    assert!(matches!(w.outcome, Some(Err(_))));
    let c = tasks::get(s, "o", "c").await.unwrap().unwrap();
    assert_eq!(c.status, Status::Completed);
    assert_eq!(tasks::fail_lapsed(s, later, i64::MAX).await.unwrap(), 0);

    // The replicas alive: those with a recent heartbeat.
    let (a, b) = (
        mcp_director::cluster::Node::new(),
        mcp_director::cluster::Node::new(),
    );
    for node in [&a, &b, &a] {
        mcp_director::cluster::heartbeat(s, node).await.unwrap();
    }
    assert_eq!(mcp_director::cluster::live(s).await.unwrap(), 2);
}

fn client(id: &str) -> Client {
    Client {
        client_id: id.into(),
        secret_hash: Some("hash".into()),
        name: Some("Tool ✓".into()),
        redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        auth_method: "client_secret_post".into(),
    }
}

async fn oauth_clients(db: &Db) {
    let s = &db.store;
    grants::insert_client(s, &client("c1"), Some("mcp"))
        .await
        .unwrap();
    assert!(grants::insert_client(s, &client("c1"), None).await.is_err());
    let c = grants::client(s, "c1").await.unwrap().unwrap();
    assert_eq!(c.secret_hash.as_deref(), Some("hash"));
    assert_eq!(c.name.as_deref(), Some("Tool ✓"));
    assert_eq!(c.redirect_uris, ["http://127.0.0.1:9/cb"]);
    assert_eq!(c.grant_types, ["authorization_code", "refresh_token"]);
    assert_eq!(c.auth_method, "client_secret_post");
    assert!(grants::client(s, "c2").await.unwrap().is_none());

    // A metadata-document client: inserted, then refreshed in place.
    let url = "https://app.example/client.json";
    let mut doc = client(url);
    doc.name = None;
    grants::upsert_client(s, &doc).await.unwrap();
    let c = grants::client(s, url).await.unwrap().unwrap();
    assert_eq!(
        (c.secret_hash, c.name, c.auth_method.as_str()),
        (None, None, "none")
    );
    doc.name = Some("Renamed".into());
    doc.redirect_uris = vec!["https://app.example/cb".into()];
    grants::upsert_client(s, &doc).await.unwrap();
    let c = grants::client(s, url).await.unwrap().unwrap();
    assert_eq!(c.name.as_deref(), Some("Renamed"));
    assert_eq!(c.redirect_uris, ["https://app.example/cb"]);
}

fn pending(id: &str, expires_ms: i64) -> Pending {
    Pending {
        request_id: id.into(),
        csrf_hash: "csrf".into(),
        browser_hash: "browser".into(),
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1:9/cb".into(),
        state: Some("xyz".into()),
        scope: "mcp".into(),
        resource: "http://127.0.0.1:3000/mcp".into(),
        code_challenge: "challenge".into(),
        oidc_state: Some("{\"nonce\":\"n\"}".into()),
        expires_ms,
        ..Pending::default()
    }
}

async fn oauth_pending_requests(db: &Db) {
    let s = &db.store;
    let later = analytics::now_ms() + 600_000;
    grants::insert_pending(s, &pending("r1", later))
        .await
        .unwrap();
    grants::insert_pending(s, &pending("gone", analytics::now_ms() - 1))
        .await
        .unwrap();
    assert!(grants::pending(s, "gone").await.unwrap().is_none());
    let p = grants::pending(s, "r1").await.unwrap().unwrap();
    assert_eq!(
        (p.state.as_deref(), p.subject.as_deref()),
        (Some("xyz"), None)
    );
    assert_eq!(p.expires_ms, later);
    assert_eq!(p.claims, Claims::default());

    let claims = Claims {
        email: Some("a@example.com".into()),
        groups: vec!["dev".into()],
    };
    assert!(grants::sign_in(s, "r1", "oidc:a", &claims).await.unwrap());
    // Once: a second sign-in does not replace the first.
    assert!(
        !grants::sign_in(s, "r1", "oidc:b", &Claims::default())
            .await
            .unwrap()
    );
    let p = grants::pending(s, "r1").await.unwrap().unwrap();
    assert_eq!(p.subject.as_deref(), Some("oidc:a"));
    assert_eq!(p.claims, claims);
    assert_eq!(p.oidc_state, None);

    // Wrong passwords: the request is gone after `max`.
    grants::insert_pending(s, &pending("r2", later))
        .await
        .unwrap();
    grants::sign_in_failed(s, "r2", 2).await.unwrap();
    assert!(grants::pending(s, "r2").await.unwrap().is_some());
    grants::sign_in_failed(s, "r2", 2).await.unwrap();
    assert!(grants::pending(s, "r2").await.unwrap().is_none());

    // A decision is taken once.
    let taken = grants::take_pending(s, "r1").await.unwrap().unwrap();
    assert_eq!(taken.subject.as_deref(), Some("oidc:a"));
    assert!(grants::take_pending(s, "r1").await.unwrap().is_none());
    grants::purge_expired(s).await.unwrap();
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM oauth_requests")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

fn code(family: &str) -> Code {
    Code {
        client_id: "c1".into(),
        redirect_uri: "http://127.0.0.1:9/cb".into(),
        code_challenge: "challenge".into(),
        resource: "http://127.0.0.1:3000/mcp".into(),
        scope: "mcp".into(),
        subject: "local:admin".into(),
        claims: Claims::default(),
        family: family.into(),
        expires_ms: analytics::now_ms() + 60_000,
    }
}

fn grant(family: &str, expires_ms: i64) -> Grant {
    Grant {
        family: family.into(),
        client_id: "c1".into(),
        subject: "local:admin".into(),
        claims: Claims {
            email: None,
            groups: vec!["ops".into()],
        },
        scope: "mcp".into(),
        resource: "http://127.0.0.1:3000/mcp".into(),
        expires_ms,
    }
}

async fn oauth_codes_redeem_once(db: &Db) {
    let s = &db.store;
    grants::insert_code(s, "the-code", &code("f1"))
        .await
        .unwrap();
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { grants::redeem_code(&s, "the-code").await.unwrap() })
        })
        .collect();
    let (mut fresh, mut replayed) = (0, 0);
    for r in racers {
        match r.await.unwrap() {
            Redeemed::Fresh(c) => {
                assert_eq!(
                    (c.family.as_str(), c.subject.as_str()),
                    ("f1", "local:admin")
                );
                fresh += 1;
            }
            Redeemed::Replayed => replayed += 1,
            Redeemed::Unknown => panic!("the code is known"),
        }
    }
    assert_eq!((fresh, replayed), (1, 7));
    // The replay revoked the grant, including tokens its exchange stores afterwards.
    assert!(grants::family_revoked(s, "f1").await.unwrap());
    assert!(matches!(
        grants::redeem_code(s, "other").await.unwrap(),
        Redeemed::Unknown
    ));
    grants::insert_code(s, "c2", &code("f2")).await.unwrap();
    assert!(!grants::family_revoked(s, "f2").await.unwrap());
}

async fn oauth_tokens_rotate_and_replays_revoke(db: &Db) {
    use mcp_director::secrets::sha256_hex;
    let s = &db.store;
    let later = analytics::now_ms() + 3_600_000;
    grants::insert_token(s, "access-1", grants::ACCESS, &grant("f", later))
        .await
        .unwrap();
    grants::insert_token(s, "refresh-1", grants::REFRESH, &grant("f", later))
        .await
        .unwrap();
    grants::insert_token(s, "expired", grants::ACCESS, &grant("f", 1))
        .await
        .unwrap();
    let g = grants::access(s, &sha256_hex("access-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((g.family.as_str(), g.expires_ms), ("f", later));
    assert_eq!(g.claims.groups, ["ops"]);
    assert!(
        grants::access(s, &sha256_hex("expired"))
            .await
            .unwrap()
            .is_none()
    );
    // A refresh token is not an access token.
    assert!(
        grants::access(s, &sha256_hex("refresh-1"))
            .await
            .unwrap()
            .is_none()
    );

    let Rotated::Fresh(g) = grants::rotate_refresh(s, "refresh-1").await.unwrap() else {
        panic!("first rotation");
    };
    assert_eq!(g.family, "f");
    assert!(matches!(
        grants::rotate_refresh(s, "unknown").await.unwrap(),
        Rotated::Invalid
    ));
    assert!(!grants::family_revoked(s, "f").await.unwrap());
    // Presented again: stolen, so the whole family goes.
    assert!(matches!(
        grants::rotate_refresh(s, "refresh-1").await.unwrap(),
        Rotated::Replayed
    ));
    assert!(grants::family_revoked(s, "f").await.unwrap());
    assert!(
        grants::access(s, &sha256_hex("access-1"))
            .await
            .unwrap()
            .is_none()
    );

    grants::purge_expired(s).await.unwrap();
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM oauth_tokens")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(
        left, 2,
        "the expired token is gone, the family's others stay"
    );
}

async fn analytics_rollups_are_written_and_read(db: &Db) {
    let recorder = Recorder::start(db.store.clone(), || Duration::from_secs(86_400));
    let record = |name, ok, ms| Record {
        kind: AnalyticsRowKind::Tool,
        server: "a",
        name,
        profile: "p",
        project: "",
        duration: Duration::from_millis(ms),
        ok,
        bytes_in: 10,
        // Past 2^31 summed: PostgreSQL's BIGINT columns, not INTEGER.
        bytes_out: 300_000_000,
    };
    for i in 0..10 {
        recorder.record(&record("busy", i % 5 != 0, 10 + i));
    }
    recorder.record(&record("quiet", true, 3));
    recorder.flush().await;
    let minute = analytics::Scope {
        window: Duration::from_secs(60),
        server: None,
        name: None,
        profile: None,
        buckets: 6,
    };
    let (rows, series) = analytics::report(&db.store, None, &minute).await.unwrap();
    assert_eq!(series.iter().map(|b| b.calls).sum::<u64>(), 11);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].name.as_str(), rows[0].calls, rows[0].errors),
        ("busy", 10, 2)
    );
    assert_eq!(
        (rows[1].name.as_str(), rows[1].calls, rows[1].errors),
        ("quiet", 1, 0)
    );
    assert_eq!(
        (rows[0].server.as_str(), rows[0].profile.as_str()),
        ("a", "p")
    );
    assert!((9.0..=20.0).contains(&rows[0].p50_ms), "{}", rows[0].p50_ms);
    // Nothing written twice: a second flush has nothing left to add.
    recorder.flush().await;
    let (again, _) = analytics::report(&db.store, None, &minute).await.unwrap();
    assert_eq!(again[0].calls, 10);
    let (bytes_out,): (i64,) =
        sqlx::query_as("SELECT bytes_out FROM analytics_rollup WHERE name = 'busy'")
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(bytes_out, 3_000_000_000);
}
