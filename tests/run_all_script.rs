//! tests/run-all.sh (`make test`): its background guest-image build, checked with every step
//! replaced by a stub (tests/run-all-test.sh; a few seconds, nothing built or booted).

use std::process::Command;

#[test]
fn run_all_builds_the_guest_images_in_the_background() {
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/run-all-test.sh"
        ))
        .output()
        .expect("bash tests/run-all-test.sh");
    assert!(
        out.status.success(),
        "tests/run-all-test.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
