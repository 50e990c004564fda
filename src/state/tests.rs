use super::*;
use crate::wire::OrderStatus;

fn order(id: &str, customer: &str, status: OrderStatus) -> Order {
    serde_json::from_value(serde_json::json!({
        "order_id": id, "customer_id": customer, "status": status
    }))
    .unwrap()
}

#[test]
fn writes_are_atomic_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut b = store.batch();
        let c = Conversation {
            failures: 1,
            ..Default::default()
        };
        b.put_conversation(2, "c1", &c);
        b.put_offset("changelog", 2, 41);
        store.write(b).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.conversation(2, "c1").unwrap().unwrap().failures, 1);
    // Another partition's "c1" is another conversation.
    assert!(store.conversation(3, "c1").unwrap().is_none());
    assert_eq!(store.applied_offset("changelog", 2).unwrap(), Some(41));
    assert_eq!(store.applied_offset("changelog", 3).unwrap(), None);
}

#[test]
fn a_partition_is_listed_scanned_and_dropped_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = Conversation {
        failures: 2,
        ..Default::default()
    };
    let mut b = store.batch();
    for p in [0, 1, 2] {
        b.put_conversation(p, &format!("c-{p}-a"), &c);
        b.put_conversation(p, &format!("c-{p}-b"), &c);
        b.put_offset("changelog", p, 10 + p as i64);
    }
    b.put_offset("orders", 7, 3);
    b.put_changelog_position("changelog", 2, 12);
    store.write(b).unwrap();
    assert_eq!(store.partitions_held("changelog").unwrap(), vec![0, 1, 2]);
    // A position says when it was written; one from before times were kept does not.
    let (next, at) = store.changelog_position("changelog", 2).unwrap().unwrap();
    assert_eq!(next, 12);
    let age = chrono::Utc::now().timestamp_millis() - at.unwrap();
    assert!((0..60_000).contains(&age), "{age}");
    assert_eq!(
        store.changelog_position("changelog", 0).unwrap(),
        Some((10, None))
    );
    let ids: Vec<String> = store.conversations_in(1).map(|r| r.unwrap().0).collect();
    assert_eq!(ids, vec!["c-1-a", "c-1-b"]);
    store.drop_partition("changelog", 1).unwrap();
    store.drop_partition("changelog", 2).unwrap();
    assert_eq!(store.changelog_position("changelog", 2).unwrap(), None);
    assert_eq!(store.conversations_in(1).count(), 0);
    assert_eq!(store.applied_offset("changelog", 1).unwrap(), None);
    assert_eq!(store.conversations_in(2).count(), 0);
    assert_eq!(store.conversations_in(0).count(), 2);
    assert_eq!(store.partitions_held("changelog").unwrap(), vec![0]);
    let mut b = store.batch();
    b.delete_conversation(0, b"c-0-a");
    store.write(b).unwrap();
    assert!(store.conversation(0, "c-0-a").unwrap().is_none());
    assert!(store.conversation(0, "c-0-b").unwrap().is_some());
}

#[test]
fn a_version_1_store_is_upgraded_and_its_conversations_still_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        // What version 1 wrote: conversations by id alone, and the version.
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = DB::open_cf(&opts, dir.path(), ["conversations", "meta", "outbox"]).unwrap();
        let c = Conversation {
            failures: 1,
            ..Default::default()
        };
        db.put_cf(
            db.cf_handle("conversations").unwrap(),
            b"old",
            codec::encode_conversation(&c),
        )
        .unwrap();
        db.put_cf(db.cf_handle("outbox").unwrap(), b"x", b"y")
            .unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), b"store_version", [1u8])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.conversation(4, "old").unwrap().unwrap().failures, 1);
    // The first change moves it into its partition.
    let moved = Conversation {
        failures: 2,
        ..Default::default()
    };
    let mut b = store.batch();
    b.put_conversation(4, "old", &moved);
    store.write(b).unwrap();
    assert_eq!(store.conversation(4, "old").unwrap().unwrap().failures, 2);
    assert!(store.conversation(5, "old").unwrap().is_none());
    drop(store);
    // Reopened as version 2.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.conversation(4, "old").unwrap().unwrap().failures, 2);
}

#[test]
fn the_customer_index_follows_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = order("A-1", "u1", OrderStatus::Processing);
    let mut b = store.batch();
    b.put_order(&a, None);
    b.put_order(&order("A-2", "u1", OrderStatus::Delivered), None);
    store.write(b).unwrap();
    assert_eq!(store.orders_of("u1").unwrap().len(), 2);
    assert_eq!(store.open_orders_of("u1").len(), 1);
    let moved = order("A-1", "u2", OrderStatus::Shipped);
    let mut b = store.batch();
    b.put_order(&moved, Some(&a));
    store.write(b).unwrap();
    assert_eq!(store.orders_of("u1").unwrap().len(), 1);
    assert_eq!(
        store.orders_of("u2").unwrap()[0].status,
        OrderStatus::Shipped
    );
    let mut b = store.batch();
    b.delete_order("A-1", Some(&moved));
    store.write(b).unwrap();
    assert!(store.orders_of("u2").unwrap().is_empty());
    assert!(store.order("A-1").unwrap().is_none());
    // "u1" must not match "u10"'s orders through the prefix.
    let mut b = store.batch();
    b.put_order(&order("B-1", "u10", OrderStatus::Placed), None);
    store.write(b).unwrap();
    assert_eq!(store.orders_of("u1").unwrap().len(), 1);
}

#[test]
fn values_from_a_newer_release_are_refused_clearly() {
    let e = decode::<Order>(&[9, b'{', b'}'], "order X").unwrap_err();
    assert!(e.to_string().contains("newer Parley"), "{e}");
    let e = codec::decode_conversation(&[0], "c").unwrap_err();
    assert!(e.to_string().contains("conversation c"), "{e}");
}
