//! The two pieces rmqtt leaves as no-ops in library mode: retained messages (wills and
//! presence are retained) and shared-subscription member choice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmqtt::context::ServerContext;
use rmqtt::retain::{DefaultRetainStorage, RetainStorage};
use rmqtt::subscribe::SharedSubscription;
use rmqtt::types::{
    ClientId, Id, IsOnline, NodeId, Retain, SharedGroup, SubscriptionIdentifier, SubscriptionOptions, TopicFilter,
    TopicName,
};

/// rmqtt's in-memory retained-message tree, switched on (its default reports itself
/// disabled, which makes the broker refuse retained wills).
#[derive(Default)]
pub struct MemoryRetain(DefaultRetainStorage);

impl std::fmt::Debug for MemoryRetain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryRetain")
    }
}

#[async_trait::async_trait]
impl RetainStorage for MemoryRetain {
    fn enable(&self) -> bool {
        true
    }

    async fn set(&self, topic: &TopicName, retain: Retain, expiry: Option<Duration>) -> rmqtt::Result<()> {
        // A zero interval means "never expires" here, as for messages.
        self.0.set_with_timeout(topic, retain, expiry.filter(|d| !d.is_zero())).await
    }

    async fn get(&self, filter: &TopicFilter) -> rmqtt::Result<Vec<(TopicName, Retain)>> {
        self.0.get_message(filter).await
    }

    async fn count(&self) -> isize {
        0
    }

    async fn max(&self) -> isize {
        0
    }
}

/// Round-robin over the online members of a shared-subscription group.
#[derive(Debug, Default)]
pub struct RoundRobin(AtomicUsize);

type Member = (NodeId, ClientId, SubscriptionOptions, Option<Vec<SubscriptionIdentifier>>, Option<IsOnline>);

#[async_trait::async_trait]
impl SharedSubscription for RoundRobin {
    fn is_supported(&self) -> bool {
        true
    }

    async fn choice(
        &self,
        _: &ServerContext,
        _: &SharedGroup,
        _: &Id,
        _: &TopicName,
        members: &[Member],
    ) -> Option<(usize, IsOnline)> {
        if members.is_empty() {
            return None;
        }
        let start = self.0.fetch_add(1, Ordering::Relaxed);
        (0..members.len())
            .map(|k| (start + k) % members.len())
            .find(|&i| members[i].4 == Some(true))
            .map(|i| (i, true))
            .or(Some((start % members.len(), false)))
    }
}
