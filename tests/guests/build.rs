//! Builds the components the tests load (never part of a release build of
//! sigd, which builds only the default policy): the strict example policy,
//! the guests that misbehave on purpose, and the wasm boundary alone (for
//! the `policy_cost` bench).

#[path = "../../host/build/wasm_guests.rs"]
mod wasm_guests;

fn main() {
    let root = wasm_guests::workspace_root();
    for watched in [
        "wit",
        "guest",
        "examples/policies/strict",
        "tests/guests/hostile",
        "tests/guests/wasi-probe",
        "tests/guests/floor",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    wasm_guests::build(&[
        ("STRICT", "sigd-policy-strict", "sigd_policy_strict"),
        (
            "HOSTILE",
            "sigd-test-guest-hostile",
            "sigd_test_guest_hostile",
        ),
        (
            "WASI_PROBE",
            "sigd-test-guest-wasi-probe",
            "sigd_test_guest_wasi_probe",
        ),
        ("FLOOR", "sigd-test-guest-floor", "sigd_test_guest_floor"),
    ]);
}
