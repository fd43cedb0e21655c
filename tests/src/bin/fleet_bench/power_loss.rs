//! Benchmark: power cuts during updates, many times over (see `fleet_tests::power_loss`):
//! how many devices ended with one bootable slot holding a complete image, a readable
//! journal and a truthful final report. The goal is all of them. The cuts are spread
//! evenly over an uncut update's duration (measured first, in the same run).

use std::collections::BTreeMap;

use fleet_tests::power_loss::{Backend, Harness};

use crate::server::sibling;

pub async fn power_loss(runs: usize, uboot: bool, rauc: bool) -> anyhow::Result<()> {
    let backend = match (uboot, rauc) {
        (true, _) => Backend::Uboot,
        (_, true) => Backend::Rauc,
        _ => Backend::AbSlots,
    };
    let agent = sibling("fleet-agent-under-test");
    let mut harness = Harness::start(agent.to_str().expect("utf-8")).await?;
    let clean = harness.cut(0, backend, None).await?;
    anyhow::ensure!(clean.bootable.is_ok(), "the uncut update: {:?}", clean.bootable);
    let span = clean.took.mul_f64(1.1);
    let (mut bootable, mut outcomes, mut broken) = (0, BTreeMap::<String, usize>::new(), Vec::new());
    for i in 1..=runs {
        let after = span.mul_f64(i as f64 / runs as f64);
        let cut = harness.cut(i, backend, Some(after)).await?;
        *outcomes.entry(format!("{:?}", cut.state)).or_default() += 1;
        match cut.bootable {
            Ok(()) => bootable += 1,
            Err(e) => broken.push(format!("cut {i} after {after:?}: {e}")),
        }
    }
    println!(
        "power cuts: {runs} updates of {backend:?} cut with SIGKILL, spread over {span:?} (uncut: {:?})",
        clean.took
    );
    println!("  ended bootable, complete and truthful  {bootable:>6} of {runs}");
    println!("  final states                          {outcomes:?}");
    for b in &broken {
        println!("  BROKEN {b}");
    }
    anyhow::ensure!(broken.is_empty(), "{} of {runs} devices were left broken", broken.len());
    Ok(())
}
