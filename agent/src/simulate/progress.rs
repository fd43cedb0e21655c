//! Waiting for the simulated devices to come online: a `connecting N/M` line each second
//! the count has changed, `online: M` once all are connected (CONTRACT §6), and a clear
//! error naming the missing devices when none more has connected for the time limit —
//! instead of waiting silently for ever (e.g. on a broker that refuses every login).

use std::collections::BTreeSet;
use std::time::Duration;

use fleet_protocol::DeviceId;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

/// How often progress is printed (when it changed).
const PRINT_EVERY: Duration = Duration::from_secs(1);

/// The devices did not all come online.
#[derive(Debug, thiserror::Error)]
#[error("gave up: {online} of {count} devices online and none more for {limit:?}; not connected: {missing}")]
pub struct Stuck {
    pub online: usize,
    pub count: usize,
    pub limit: Duration,
    /// Some of the missing devices' ids.
    pub missing: String,
}

/// Counts devices as their links come up (each sends its id once on `online`) until all
/// of `expected` are online (then prints `online: N`) or `shutdown`; gives up when `limit`
/// passes without a new one.
pub async fn wait_online(
    expected: BTreeSet<String>,
    mut online: UnboundedReceiver<DeviceId>,
    limit: Duration,
    shutdown: &CancellationToken,
) -> Result<(), Stuck> {
    let count = expected.len();
    let mut missing = expected;
    // The first line comes before any device can be counted, so a run always shows it
    // (the ticker's first tick would race the devices that are already online).
    println!("connecting 0/{count}");
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + PRINT_EVERY, PRINT_EVERY);
    let (mut printed, mut last_news) = (Some(0), tokio::time::Instant::now());
    while !missing.is_empty() {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            up = online.recv() => match up {
                Some(id) => {
                    if missing.remove(id.as_str()) {
                        last_news = tokio::time::Instant::now();
                    }
                }
                // Every device's runner has ended: nothing more will come.
                None => break,
            },
            _ = ticker.tick() => {
                let connected = count - missing.len();
                if printed != Some(connected) {
                    println!("connecting {connected}/{count}");
                    printed = Some(connected);
                }
                if last_news.elapsed() >= limit {
                    break;
                }
            }
        }
    }
    if missing.is_empty() {
        println!("online: {count}");
        return Ok(());
    }
    let missing_ids: Vec<String> = missing.iter().cloned().collect();
    Err(Stuck { online: count - missing.len(), count, limit, missing: some_of(&missing_ids) })
}

/// The first few of `ids`, and how many more.
pub fn some_of(ids: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = ids.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("sim-{i}")).collect()
    }

    #[test]
    fn names_a_few_and_counts_the_rest() {
        assert_eq!(some_of(&ids(2)), "sim-0, sim-1");
        assert_eq!(some_of(&ids(7)), "sim-0, sim-1, sim-2, sim-3, sim-4 and 2 more");
    }

    #[tokio::test]
    async fn all_online_is_done_and_silence_gives_up_naming_the_missing() {
        let expected: BTreeSet<String> = ids(3).into_iter().collect();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for id in ["sim-0", "sim-1", "sim-2"] {
            tx.send(DeviceId::parse(id).unwrap()).unwrap();
        }
        let never = CancellationToken::new();
        wait_online(expected.clone(), rx, Duration::from_secs(5), &never).await.expect("all online");

        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(DeviceId::parse("sim-1").unwrap()).unwrap();
        let started = tokio::time::Instant::now();
        let stuck = wait_online(expected, rx, Duration::from_secs(1), &never).await.unwrap_err();
        assert_eq!((stuck.online, stuck.count, stuck.missing.as_str()), (1, 3, "sim-0, sim-2"));
        assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
        drop(tx);
    }
}
