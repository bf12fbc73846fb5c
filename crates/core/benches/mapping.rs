//! Mapping 8 fields from a ~2 KB DingTalk `topapi/v2/user/get` document: the compiled rules
//! ([`MappingRules::map`]) against the baseline of parsing every JSONPath on every call (what a
//! naive implementation, such as the Java seed's `JsonPath.read(doc, path)` per field, does).
//!
//! Metrics: `mapping.profile_ns` (median ns per profile, baseline = the uncompiled ns) and
//! `mapping.speedup_vs_uncompiled`. Goals: <= 2000 ns per profile, >= 5x faster.
//!
//! Side by side, for the engine choice (informational, no goal): selecting the same 8 paths with
//! `jsonpath_lib::Compiled` alone (`mapping.jsonpath_lib_select8_ns`) and with `serde_json_path`
//! precompiled (`mapping.serde_json_path_select8_ns`). The engine evaluates plain child-step
//! paths by a direct walk and everything else through `jsonpath_lib` (see
//! `src/mapping/jsonpath.rs`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::Value;
use unilogin_benchkit::{Metric, percentile, quick, write_metrics};
use unilogin_core::mapping::MappingRules;
use unilogin_core::{PlatformName, TenantId};

/// Eight fields, with the backups and transforms of the default DingTalk rules.
const RULES: &str = r#"
dingtalk:
  user_id: { path: "$.result.userid", backup: ["$.userid"], required: true }
  union_id: { path: "$.result.unionid", backup: ["$.me.unionId"] }
  name: { path: "$.result.name", backup: ["$.me.nick"], transform: trim }
  mobile: { path: "$.result.mobile", backup: ["$.me.mobile"], transform: [trim, strip_country_code] }
  email: { path: "$.result.email", backup: ["$.result.org_email"], transform: [trim, lowercase] }
  avatar: { path: "$.result.avatar", backup: ["$.me.avatarUrl"] }
  employee_no: { path: "$.result.job_number" }
  department_ids: { path: "$.result.dept_id_list[*]", many: true }
"#;

/// The same primary paths, for the parse-every-call baseline.
const PATHS: [&str; 8] = [
    "$.result.userid",
    "$.result.unionid",
    "$.result.name",
    "$.result.mobile",
    "$.result.email",
    "$.result.avatar",
    "$.result.job_number",
    "$.result.dept_id_list[*]",
];

const DOC: &str = include_str!("dingtalk_user_get_2k.json");

/// The baseline: parse each path on every call, take the first value as text (the list for the
/// last one). It does less work per field than the engine (no backups, no transforms), so the
/// measured speed-up understates the gain of compiling.
fn uncompiled(doc: &Value) -> Vec<Option<String>> {
    let text = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let mut out = Vec::with_capacity(PATHS.len() + 4);
    for (i, path) in PATHS.iter().enumerate() {
        let selected = jsonpath_lib::select(doc, path).unwrap_or_default();
        if i == PATHS.len() - 1 {
            out.extend(selected.into_iter().map(text));
        } else {
            out.push(selected.first().and_then(|v| text(v)));
        }
    }
    out
}

/// Median ns per call of `f` over `batches` batches of `per_batch` calls.
fn measure(batches: usize, per_batch: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..per_batch {
        f();
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        samples.push(start.elapsed() / per_batch as u32);
    }
    percentile(&mut samples, 50.0).as_nanos() as f64
}

fn main() {
    let doc: Value = serde_json::from_str(DOC).expect("bench document is JSON");
    let rules = MappingRules::from_yaml("dingtalk", RULES).expect("bench rules load");
    let platform = PlatformName::new("dingtalk").expect("valid name");
    let tenant = TenantId::new("bench").expect("valid tenant");

    // Both sides must find the same values.
    let profile = rules.map(&platform, &tenant, &doc).expect("maps");
    let base = uncompiled(&doc);
    assert_eq!(base[0].as_deref(), profile.user_id.as_deref());
    assert_eq!(base[2], profile.name);
    assert_eq!(profile.department_ids.len(), 5);
    assert_eq!(profile.mobile.as_deref(), Some("13800000000"));

    let (batches, per_batch) = if quick() { (5, 20) } else { (60, 2_000) };
    // Interleave the two sides so both see the same machine load.
    let mut compiled_ns = Vec::new();
    let mut uncompiled_ns = Vec::new();
    for _ in 0..3 {
        compiled_ns.push(measure(batches, per_batch, || {
            black_box(
                rules
                    .map(black_box(&platform), black_box(&tenant), black_box(&doc))
                    .ok(),
            );
        }));
        uncompiled_ns.push(measure(batches, per_batch, || {
            black_box(uncompiled(black_box(&doc)));
        }));
    }
    // The libraries alone, selecting the 8 paths precompiled.
    let jl: Vec<jsonpath_lib::Compiled> = PATHS
        .iter()
        .map(|p| jsonpath_lib::Compiled::compile(p).expect("valid path"))
        .collect();
    let sjp: Vec<serde_json_path::JsonPath> = PATHS
        .iter()
        .map(|p| serde_json_path::JsonPath::parse(p).expect("valid path"))
        .collect();
    for (a, b) in jl.iter().zip(&sjp) {
        let a = a.select(&doc).unwrap_or_default();
        let b = b.query(&doc).all();
        assert_eq!(a, b, "libraries disagree");
    }
    let jl_ns = measure(batches, per_batch, || {
        for p in &jl {
            black_box(p.select(black_box(&doc)).ok());
        }
    });
    let sjp_ns = measure(batches, per_batch, || {
        for p in &sjp {
            black_box(p.query(black_box(&doc)).all());
        }
    });

    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let compiled = best(&compiled_ns);
    let baseline = best(&uncompiled_ns);
    let speedup = if compiled > 0.0 {
        baseline / compiled
    } else {
        0.0
    };

    println!(
        "document: {} bytes (compact {} bytes); runs compiled {compiled_ns:?} ns, uncompiled {uncompiled_ns:?} ns",
        DOC.len(),
        serde_json::to_string(&doc).map(|s| s.len()).unwrap_or(0)
    );
    let metrics = [
        Metric::new(
            "mapping.profile_ns",
            compiled,
            "ns",
            Some(baseline),
            "<= 2000",
        ),
        Metric::new("mapping.speedup_vs_uncompiled", speedup, "x", None, ">= 5"),
        Metric::new("mapping.jsonpath_lib_select8_ns", jl_ns, "ns", None, "-"),
        Metric::new(
            "mapping.serde_json_path_select8_ns",
            sjp_ns,
            "ns",
            None,
            "-",
        ),
    ];
    if let Err(e) = write_metrics("mapping", &metrics) {
        eprintln!("could not write metrics: {e}");
        std::process::exit(1);
    }
}
