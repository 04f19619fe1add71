//! Fencing: the stores' fences refuse old epochs, and a leader raises the
//! fence of every branch it serves when it takes the lease, and of branches
//! added later.

use std::time::Duration;

use crate::support::app::spawn_app;
use crate::support::cluster::RedisProbe;
use crate::support::eventually;
use crate::support::redis::RedisServer;

/// The fences themselves, straight on the store: epoch 0 (which no leader
/// ever holds) is refused even before any leader exists, a group write needs
/// the group's current epoch, and a branch fence refuses any epoch below the
/// highest that wrote there.
#[actix_web::test]
async fn fences_refuse_epoch_zero_and_older_epochs() {
    use turnus::domain::Id;
    use turnus::settings::RedisSettings;
    use turnus::store::{Store, StoreError};

    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), &RedisSettings::default()).expect("store");
    let group = Id::parse("g").expect("id");
    let branch = Id::parse("b").expect("id");
    let fenced = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Fenced { .. }));

    assert!(
        fenced(store.fence_probe(&group, 0).await),
        "epoch 0 before any leader"
    );
    assert!(
        fenced(store.raise_branch_fence(&branch, 0).await),
        "epoch 0 on a branch"
    );

    let first = store
        .acquire_lease(&group, "n1", 60_000)
        .await
        .expect("redis")
        .expect("free lease");
    store
        .fence_probe(&group, first)
        .await
        .expect("the holder's epoch passes");
    store
        .raise_branch_fence(&branch, first)
        .await
        .expect("raises");

    // A second leader (the first lease released) gets a higher epoch.
    let holder = turnus::store::cluster::LeaseHolder {
        node: "n1".into(),
        epoch: first,
    };
    assert!(store.release_lease(&group, &holder).await.expect("redis"));
    let second = store
        .acquire_lease(&group, "n2", 60_000)
        .await
        .expect("redis")
        .expect("free lease");
    assert!(second > first);
    store
        .raise_branch_fence(&branch, second)
        .await
        .expect("raises");
    assert!(
        fenced(store.fence_probe(&group, first).await),
        "old epoch on the group"
    );
    assert!(
        fenced(store.raise_branch_fence(&branch, first).await),
        "old epoch on the branch"
    );
    store
        .fence_probe(&group, second)
        .await
        .expect("current epoch passes");
}

/// A node that becomes leader has the fence of its branches at its epoch
/// within seconds, and of a branch added while it leads. (The day closer's
/// first fenced close of each branch raises the fence as well, so this holds
/// the property, not which actor wrote first.)
#[actix_web::test]
async fn the_leader_raises_the_fences_of_its_branches() {
    let app = spawn_app().await;
    app.setup_branch("main", &[("cash", "C")], &[]).await;
    let epoch = eventually("this node leads", Duration::from_secs(30), || async {
        let view = app.cluster().await;
        (view.leader.is_some() && view.epoch > 0).then_some(view.epoch)
    })
    .await;
    let mut probe = RedisProbe::connect(&app.redis.url());
    eventually("the fence of main raised", Duration::from_secs(10), || {
        let fence = probe.branch_fence("main");
        async move { (fence == epoch).then_some(()) }
    })
    .await;

    app.setup_branch("late", &[("cash", "C")], &[]).await;
    eventually(
        "the fence of a branch added later raised",
        Duration::from_secs(10),
        || {
            let fence = probe.branch_fence("late");
            async move { (fence == epoch).then_some(()) }
        },
    )
    .await;
    assert_eq!(app.cluster().await.epoch, epoch, "still the same term");
}
