/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/fleet_agent_core-c3ccc45769ac64d9.d: /work/wt-fix/agent-core/src/lib.rs /work/wt-fix/agent-core/src/admission.rs /work/wt-fix/agent-core/src/command.rs /work/wt-fix/agent-core/src/envelope.rs /work/wt-fix/agent-core/src/flash.rs /work/wt-fix/agent-core/src/id.rs /work/wt-fix/agent-core/src/image.rs /work/wt-fix/agent-core/src/job.rs /work/wt-fix/agent-core/src/journal.rs /work/wt-fix/agent-core/src/kind.rs /work/wt-fix/agent-core/src/machine.rs /work/wt-fix/agent-core/src/manifest.rs /work/wt-fix/agent-core/src/report.rs /work/wt-fix/agent-core/src/session.rs /work/wt-fix/agent-core/src/state.rs /work/wt-fix/agent-core/src/updater.rs /work/wt-fix/agent-core/src/updater/persist.rs /work/wt-fix/agent-core/src/updater/reports.rs /work/wt-fix/agent-core/src/updater/steps.rs /work/wt-fix/agent-core/src/verify.rs /work/wt-fix/agent-core/src/version.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libfleet_agent_core-c3ccc45769ac64d9.rmeta: /work/wt-fix/agent-core/src/lib.rs /work/wt-fix/agent-core/src/admission.rs /work/wt-fix/agent-core/src/command.rs /work/wt-fix/agent-core/src/envelope.rs /work/wt-fix/agent-core/src/flash.rs /work/wt-fix/agent-core/src/id.rs /work/wt-fix/agent-core/src/image.rs /work/wt-fix/agent-core/src/job.rs /work/wt-fix/agent-core/src/journal.rs /work/wt-fix/agent-core/src/kind.rs /work/wt-fix/agent-core/src/machine.rs /work/wt-fix/agent-core/src/manifest.rs /work/wt-fix/agent-core/src/report.rs /work/wt-fix/agent-core/src/session.rs /work/wt-fix/agent-core/src/state.rs /work/wt-fix/agent-core/src/updater.rs /work/wt-fix/agent-core/src/updater/persist.rs /work/wt-fix/agent-core/src/updater/reports.rs /work/wt-fix/agent-core/src/updater/steps.rs /work/wt-fix/agent-core/src/verify.rs /work/wt-fix/agent-core/src/version.rs

/work/wt-fix/agent-core/src/lib.rs:
/work/wt-fix/agent-core/src/admission.rs:
/work/wt-fix/agent-core/src/command.rs:
/work/wt-fix/agent-core/src/envelope.rs:
/work/wt-fix/agent-core/src/flash.rs:
/work/wt-fix/agent-core/src/id.rs:
/work/wt-fix/agent-core/src/image.rs:
/work/wt-fix/agent-core/src/job.rs:
/work/wt-fix/agent-core/src/journal.rs:
/work/wt-fix/agent-core/src/kind.rs:
/work/wt-fix/agent-core/src/machine.rs:
/work/wt-fix/agent-core/src/manifest.rs:
/work/wt-fix/agent-core/src/report.rs:
/work/wt-fix/agent-core/src/session.rs:
/work/wt-fix/agent-core/src/state.rs:
/work/wt-fix/agent-core/src/updater.rs:
/work/wt-fix/agent-core/src/updater/persist.rs:
/work/wt-fix/agent-core/src/updater/reports.rs:
/work/wt-fix/agent-core/src/updater/steps.rs:
/work/wt-fix/agent-core/src/verify.rs:
/work/wt-fix/agent-core/src/version.rs:
