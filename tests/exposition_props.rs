//! Property tests: arbitrary label values (any Unicode, control characters,
//! escape look-alikes, lossy-decoded bytes, 64 KiB values) pushed through both
//! encoders, then read back by `promtool`, the reference OpenMetrics parser,
//! [`Scrape`] and an independent strict Prometheus 0.0.4 decoder written here.
//! Every series must come back byte-for-byte: nothing lost, merged or altered.
//!
//! Each run draws a fresh seed and prints it; replay a failure with
//! `PLIMSOLL_PROP_SEED=<seed> cargo test --features full --test exposition_props`.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

use plimsoll::testing::Scrape;
use plimsoll::{Format, Telemetry, Tenant, TraceRef, impl_label_set};

/// Replays a run: the seed printed by a failing run.
const SEED_ENV: &str = "PLIMSOLL_PROP_SEED";
const BATCHES: usize = 12;
const SERIES_PER_BATCH: usize = 200;
/// The length of the long values, in bytes.
const LONG: usize = 64 * 1024;

const PREFIX: &str = "props";
const COUNTER: &str = "props_requests_total";
const GAUGE: &str = "props_queue_depth";
const HISTOGRAM: &str = "props_request_duration_seconds";
const HELP: &str = "Help with \\ and\nnewline and \"quotes\" and ünï ✓.";
const CONST_LABEL: &str = "origin";
const LABEL_NAMES: [&str; 4] = ["tenant_id", "route", "detail", CONST_LABEL];
const BUCKETS: [f64; 2] = [0.5, 10.0];
const LE: [&str; 3] = ["0.5", "10.0", "+Inf"];
/// Samples per series: a counter, a gauge, three buckets, sum and count.
const SAMPLES_PER_SERIES: usize = 2 + LE.len() + 2;

/// Valid tenant ids as they appear in `tenant_id`; the last is the system tenant.
const TENANTS: [&str; 5] = [
    "acme",
    "globex",
    "t-1.x:y_z",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    "__system__",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Pair {
    route: String,
    detail: String,
}
impl_label_set!(Pair { route, detail });

// ---------------------------------------------------------------------------
// Generation

/// splitmix64: small, seedable, good enough to draw test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A char from `start..=end` (both scalar values).
    fn in_range(&mut self, start: u32, end: u32) -> char {
        let code = start + (self.next() % u64::from(end - start + 1)) as u32;
        char::from_u32(code).expect("range holds scalar values only")
    }
}

const SPECIAL: &[char] = &[
    '"', '\\', '{', '}', ',', '=', '#', ' ', '\t', '\r', '\n', '\0',
];
/// Invisible, format and separator characters, some of which other parsers
/// treat as line ends or whitespace (NEL, VT, FF, FS/GS/RS, LS, PS).
const FORMAT_CHARS: &[char] = &[
    '\u{FEFF}', '\u{2028}', '\u{2029}', '\u{85}', '\u{A0}', '\u{200B}', '\u{200D}', '\u{3000}',
    '\u{FFFD}', '\u{FFFE}', '\u{FFFF}', '\u{0B}', '\u{0C}', '\u{1C}', '\u{1D}', '\u{1E}',
];
const RTL_MARKS: &[char] = &[
    '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}',
    '\u{2067}', '\u{2068}', '\u{2069}', '\u{61C}',
];
/// Pieces that look like escapes, line ends or exposition syntax.
const TOKENS: &[&str] = &[
    "\\n",
    "\\\"",
    "\\\\",
    "\\",
    "\"",
    "\n",
    "\r\n",
    "\\\n",
    "\\\\\"",
    "\\u0000",
    "\\x00",
    "\\t",
    "\",",
    "\"}",
    "} ",
    " # ",
    "# EOF",
    "\n# EOF\n",
    "=\"",
    ",le=\"+Inf\"",
    "{trace_id=\"00\"}",
    "tenant_id=\"evil\"",
    " 1 1700000000",
    "NaN",
    "%s%n",
];
/// Hand-picked values every run starts with.
const CORPUS: &[&str] = &[
    "",
    " ",
    "  leading",
    "trailing  ",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "\n\n",
    "\0",
    "a\0b",
    "\x01\x1f\x7f",
    "\"",
    "\\",
    "\\\\",
    "\\n",
    "\\\"",
    "\"\\",
    "\\\"\\",
    "{",
    "}",
    "{}",
    ",",
    "=",
    "#",
    "# EOF",
    "\n# EOF\n",
    "x\",detail=\"y",
    "a} 1\nfake_total{b=\"c",
    "\u{FEFF}",
    "\u{FEFF}bom",
    "\u{2028}",
    "\u{2029}",
    "line\u{2028}sep\u{2029}para",
    "\u{85}",
    "\u{0B}\u{0C}",
    "\u{1C}\u{1D}\u{1E}",
    "é",
    "e\u{301}",
    "\u{202E}evil\u{202C}",
    "שלום",
    "مرحبا",
    "😀",
    "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
    "\u{10FFFF}",
    "\u{10000}",
    "\u{FFFD}",
    "\u{FFFF}",
    "\u{E000}",
    "\u{D7FF}",
    "\u{A0}",
    "\u{3000}",
    "NaN",
    "+Inf",
    "le",
    "tenant_id=\"evil\"",
    "\\u0041",
    "__other__",
];
/// Pairs that collide when labels are joined without escaping.
const INJECTIONS: &[(&str, &str)] = &[
    ("a", "b,c"),
    ("a,b", "c"),
    ("a\"", ""),
    ("", "a\""),
    ("x\",detail=\"y", "z"),
    ("x", "y\",route=\"z"),
    ("a\\", "\"b"),
    ("a\\\"", "b"),
    ("a\n", "b"),
    ("a\\n", "b"),
];

fn any_char(rng: &mut Rng) -> char {
    match rng.below(12) {
        0 => rng.in_range(0x00, 0x1f),
        1 => rng.pick(SPECIAL),
        2 => rng.in_range(0x300, 0x36f),
        3 => match rng.below(3) {
            0 => rng.in_range(0x5d0, 0x5ea),
            1 => rng.in_range(0x620, 0x64a),
            _ => rng.pick(RTL_MARKS),
        },
        4 => rng.pick(FORMAT_CHARS),
        5 => match rng.below(2) {
            0 => rng.in_range(0x1f300, 0x1faff),
            _ => rng.in_range(0x10000, 0x10ffff),
        },
        6 => loop {
            if let Some(c) = char::from_u32((rng.next() % 0x11_0000) as u32) {
                break c;
            }
        },
        7 => rng.in_range(0x80, 0x9f),
        8 => rng.in_range(0x4e00, 0x9fff),
        9 => '\u{7f}',
        _ => rng.in_range(0x20, 0x7e),
    }
}

fn chars(rng: &mut Rng, max: usize) -> String {
    let len = rng.below(max + 1);
    (0..len).map(|_| any_char(rng)).collect()
}

/// `String::from_utf8_lossy` of random bytes, biased to invalid sequences.
fn lossy(rng: &mut Rng, len: usize) -> String {
    let bytes: Vec<u8> = (0..len)
        .map(|_| match rng.below(4) {
            0 => rng.pick(b"\"\\\n{}=,# "),
            1 => rng.in_range(0x20, 0x7e) as u8,
            _ => rng.next() as u8,
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn value(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => String::new(),
        1 => (0..=rng.below(6)).map(|_| rng.pick(TOKENS)).collect(),
        2 => {
            let len = rng.below(33);
            lossy(rng, len)
        }
        3 => {
            let pad = [" ", "  ", "\t", " \u{A0}"];
            let (l, r) = (rng.pick(&pad), rng.pick(&pad));
            format!("{l}{}{r}", chars(rng, 8))
        }
        4 => rng.pick(CORPUS).to_string(),
        _ => chars(rng, 24),
    }
}

/// A value of exactly [`LONG`] bytes; `kind` picks its content.
fn long_value(rng: &mut Rng, kind: usize) -> String {
    let source: String = match kind % 6 {
        0 => (0..LONG).map(|_| rng.in_range(0x61, 0x7a)).collect(),
        1 => "\\".repeat(LONG),
        2 => (0..LONG).map(|_| rng.pick(&['"', '\\', '\n'])).collect(),
        3 => (0..LONG).map(|_| any_char(rng)).collect(),
        4 => lossy(rng, LONG),
        _ => (0..LONG / 4)
            .map(|_| rng.in_range(0x10000, 0x10ffff))
            .collect(),
    };
    let mut out = String::with_capacity(LONG);
    for c in source.chars() {
        if out.len() + c.len_utf8() > LONG {
            break;
        }
        out.push(c);
    }
    while out.len() < LONG {
        out.push('x');
    }
    out
}

const GAUGE_VALUES: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    -0.5,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    5e-324,
    -5e-324,
    2.225_073_858_507_201e-308,
    f64::MIN_POSITIVE,
    1e300,
    -1e300,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
    0.1,
    1e15,
    999_999_999_999_999.0,
    -999_999_999_999_999.0,
    9_007_199_254_740_993.0,
    1e-7,
    -123_456_789.125,
];

/// Non-negative, so that every `_sum` is a valid OpenMetrics counter value.
const OBSERVATIONS: &[f64] = &[
    0.0,
    5e-324,
    0.25,
    0.5,
    0.500_000_000_000_000_1,
    1.0,
    3.0,
    10.0,
    10.000_000_000_000_002,
    1e300,
    f64::MAX,
    f64::INFINITY,
    f64::NAN,
];

#[derive(Clone, Debug)]
enum Action {
    Inc(u64),
    Set(f64),
    Observe(f64, Option<TraceRef>),
}

#[derive(Clone, Debug)]
struct Op {
    tenant: usize,
    labels: Pair,
    action: Action,
}

/// What one exposition holds: a constant label value and what was recorded.
#[derive(Debug)]
struct Batch {
    constant: String,
    ops: Vec<Op>,
}

fn series_ops(rng: &mut Rng, tenant: usize, labels: &Pair, ops: &mut Vec<Op>) {
    let mut push = |action| {
        ops.push(Op {
            tenant,
            labels: labels.clone(),
            action,
        })
    };
    for _ in 0..=rng.below(2) {
        push(Action::Inc(match rng.below(4) {
            0 => 1,
            1 => rng.below(1000) as u64,
            2 => rng.next() >> 12,
            _ => rng.next() >> 2,
        }));
    }
    for _ in 0..=rng.below(2) {
        push(Action::Set(if rng.one_in(4) {
            f64::from_bits(rng.next())
        } else {
            rng.pick(GAUGE_VALUES)
        }));
    }
    for _ in 0..=rng.below(3) {
        let trace = rng.one_in(2).then(|| TraceRef {
            trace_id: u128::from(rng.next()) << 64 | u128::from(rng.next()),
            span_id: rng.next(),
        });
        push(Action::Observe(rng.pick(OBSERVATIONS), trace));
    }
}

fn batch(rng: &mut Rng, index: usize) -> Batch {
    let constant = match index {
        0 => "q\"a\\b\nc},origin=\"x\" 1\n# EOF\n\u{FEFF}\u{2028}".to_string(),
        1 => (0..256).map(|_| any_char(rng)).collect(),
        _ => value(rng),
    };
    let long_at = (rng.below(SERIES_PER_BATCH), rng.below(2));
    let mut ops = Vec::new();
    let mut series: Vec<(usize, Pair)> = Vec::new();
    for i in 0..SERIES_PER_BATCH {
        let (mut route, mut detail) = (value(rng), value(rng));
        if index == 0 && i < CORPUS.len() {
            route = CORPUS[i].to_string();
            detail = CORPUS[(i * 7 + 3) % CORPUS.len()].to_string();
        } else if index == 0 && i < CORPUS.len() + INJECTIONS.len() {
            let (r, d) = INJECTIONS[i - CORPUS.len()];
            (route, detail) = (r.to_string(), d.to_string());
        }
        if long_at == (i, 0) {
            route = long_value(rng, index);
        } else if long_at == (i, 1) {
            detail = long_value(rng, index);
        }
        // The first batch puts every series under one tenant, so that two
        // injection pairs whose labels collided would merge.
        let tenant = if index == 0 {
            0
        } else {
            rng.below(TENANTS.len())
        };
        let labels = Pair { route, detail };
        series_ops(rng, tenant, &labels, &mut ops);
        // Now and then record an earlier series again, from fresh strings.
        if !series.is_empty() && rng.one_in(10) {
            let (tenant, earlier) = &series[rng.below(series.len())];
            let again = Pair {
                route: earlier.route.as_str().to_owned(),
                detail: earlier.detail.as_str().to_owned(),
            };
            series_ops(rng, *tenant, &again, &mut ops);
        }
        series.push((tenant, labels));
    }
    Batch { constant, ops }
}

// ---------------------------------------------------------------------------
// Recording and the model

/// `(tenant_id, route, detail)`.
type Key = (String, String, String);

/// What one series must read back as.
#[derive(Debug, Default)]
struct Expected {
    count: u64,
    gauge: f64,
    buckets: [u64; LE.len()],
    sum: f64,
    /// The latest exemplar of each bucket.
    exemplars: [Option<(TraceRef, f64)>; LE.len()],
}

fn key(op: &Op) -> Key {
    (
        TENANTS[op.tenant].to_string(),
        op.labels.route.clone(),
        op.labels.detail.clone(),
    )
}

fn model(ops: &[Op]) -> HashMap<Key, Expected> {
    let mut series: HashMap<Key, Expected> = HashMap::new();
    for op in ops {
        let e = series.entry(key(op)).or_default();
        match op.action {
            Action::Inc(n) => e.count += n,
            Action::Set(v) => e.gauge = v,
            Action::Observe(v, trace) => {
                let bucket = BUCKETS
                    .iter()
                    .position(|b| v <= *b)
                    .unwrap_or(BUCKETS.len());
                e.buckets[bucket] += 1;
                if !v.is_nan() {
                    e.sum += v;
                }
                if let Some(trace) = trace {
                    e.exemplars[bucket] = Some((trace, v));
                }
            }
        }
    }
    series
}

fn record(constant: &str, ops: &[Op]) -> Telemetry {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .with_prefix(PREFIX)
        .with_const_label(CONST_LABEL, constant)
        .with_buckets(BUCKETS.to_vec())
        .build()
        .unwrap();
    let requests = t.counter::<Pair>("requests", HELP).unwrap();
    let depth = t.gauge::<Pair>("queue_depth", HELP).unwrap();
    let latency = t
        .histogram::<Pair>("request_duration_seconds", HELP)
        .unwrap();
    let tenants: Vec<Tenant> = TENANTS
        .iter()
        .map(|raw| match *raw {
            "__system__" => Tenant::system(),
            raw => t.try_tenant(raw).unwrap(),
        })
        .collect();
    for op in ops {
        let tenant = &tenants[op.tenant];
        match op.action {
            Action::Inc(n) => requests.inc_by(tenant, &op.labels, n),
            Action::Set(v) => depth.set(tenant, &op.labels, v),
            Action::Observe(v, None) => latency.observe(tenant, &op.labels, v),
            Action::Observe(v, trace) => {
                latency.observe_with_exemplar(tenant, &op.labels, v, trace)
            }
        }
    }
    t
}

// ---------------------------------------------------------------------------
// Reading back

/// One sample as some reader decoded it.
#[derive(Debug)]
struct Decoded {
    name: String,
    /// In the order the reader gives them.
    labels: Vec<(String, String)>,
    value: f64,
    /// The value as written, when the reader keeps it (integers compare exactly).
    token: Option<String>,
    exemplar: Option<(Vec<(String, String)>, f64)>,
}

fn parse_f64(token: &str) -> Result<f64, String> {
    match token {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        t if t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.e".contains(&b)) =>
        {
            t.parse().map_err(|_| format!("bad number {t:?}"))
        }
        t => Err(format!("bad number {t:?}")),
    }
}

/// Reads a quoted value after its opening quote, unescaping `\\`, `\"` and
/// `\n` (the only escapes of both formats); returns it and what follows the
/// closing quote.
fn unescape(s: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("bad escape \\{:?}", other.map(|(_, c)| c))),
            },
            '\n' => return Err("raw newline in a label value".into()),
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

fn is_name(s: &str, first: impl Fn(char) -> bool, rest: impl Fn(char) -> bool) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(first) && chars.all(rest)
}

/// A strict reader of Prometheus text 0.0.4 as plimsoll writes it: every
/// line is `# HELP`, `# TYPE` or `name{label="value",…} value`, and nothing
/// else; independent of [`Scrape`].
fn decode_prometheus(body: &str) -> Result<Vec<Decoded>, String> {
    let body = body
        .strip_suffix('\n')
        .ok_or("the body does not end in a newline")?;
    let mut samples = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let at = |e: String| format!("line {}: {e}: {}", i + 1, show(line));
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let open = line.find('{').ok_or_else(|| at("no labels".into()))?;
        let name = &line[..open];
        let metric_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        if !is_name(name, |c| metric_char(c) && !c.is_ascii_digit(), metric_char) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let mut rest = &line[open + 1..];
        let mut labels = Vec::new();
        loop {
            let eq = rest.find('=').ok_or_else(|| at("label without =".into()))?;
            let label = &rest[..eq];
            let label_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
            if !is_name(label, |c| label_char(c) && !c.is_ascii_digit(), label_char) {
                return Err(at(format!("bad label name {}", show(label))));
            }
            let quoted = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or_else(|| at("label value without a quote".into()))?;
            let (value, after) = unescape(quoted).map_err(at)?;
            labels.push((label.to_string(), value));
            match after.as_bytes().first() {
                Some(b',') => rest = &after[1..],
                Some(b'}') => {
                    rest = &after[1..];
                    break;
                }
                _ => return Err(at(format!("junk after a label value: {}", show(after)))),
            }
        }
        let token = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?;
        samples.push(Decoded {
            name: name.to_string(),
            labels,
            value: parse_f64(token).map_err(at)?,
            token: Some(token.to_string()),
            exemplar: None,
        });
    }
    Ok(samples)
}

fn decode_with_scrape(body: &str) -> Result<Vec<Decoded>, String> {
    let scrape = Scrape::parse(body).map_err(|e| e.to_string())?;
    Ok(scrape
        .samples()
        .iter()
        .map(|s| Decoded {
            name: s.name.clone(),
            labels: s.labels.clone().into_iter().collect(),
            value: s.value,
            token: None,
            exemplar: s
                .exemplar
                .as_ref()
                .map(|e| (e.labels.clone().into_iter().collect(), e.value)),
        })
        .collect())
}

/// Prints every sample the reference parser reads as ASCII-only JSON:
/// `[[name, {labels}, repr(value), null | [{labels}, repr(value)]], …]`.
const OPENMETRICS_SAMPLES: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = sys.stdin.buffer.read().decode("utf-8")
out = []
for family in text_string_to_metric_families(text):
    for s in family.samples:
        e = s.exemplar
        out.append([s.name, s.labels, repr(s.value),
                    None if e is None else [e.labels, repr(e.value)]])
sys.stdout.write(json.dumps(out, ensure_ascii=True))
"#;

/// The samples as the reference OpenMetrics parser reads them.
fn decode_with_python(body: &str) -> Result<Vec<Decoded>, String> {
    let mut child = Command::new("python3")
        .args(["-c", OPENMETRICS_SAMPLES])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn python3: {e}"))?;
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (json, ()) = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut out = String::new();
            stdout.read_to_string(&mut out).map(|_| out)
        });
        // A write error means python exited early; its stderr says why.
        let _ = stdin.write_all(body.as_bytes());
        drop(stdin);
        (reader.join().unwrap(), ())
    });
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let json = json.map_err(|e| format!("python output: {e}"))?;
    let Json::Arr(rows) = Json::parse(&json)? else {
        return Err("not a JSON list".into());
    };
    let labels = |j: &Json| -> Result<Vec<(String, String)>, String> {
        let Json::Obj(pairs) = j else {
            return Err(format!("labels are not an object: {j:?}"));
        };
        pairs
            .iter()
            .map(|(k, v)| match v {
                Json::Str(v) => Ok((k.clone(), v.clone())),
                v => Err(format!("label {k} is not a string: {v:?}")),
            })
            .collect()
    };
    rows.iter()
        .map(|row| match row {
            Json::Arr(f) if f.len() == 4 => {
                let (Json::Str(name), Json::Str(token)) = (&f[0], &f[2]) else {
                    return Err(format!("bad row {row:?}"));
                };
                let exemplar = match &f[3] {
                    Json::Null => None,
                    Json::Arr(e) if e.len() == 2 => match &e[1] {
                        Json::Str(v) => Some((labels(&e[0])?, parse_python_f64(v)?)),
                        _ => return Err(format!("bad exemplar {row:?}")),
                    },
                    _ => return Err(format!("bad exemplar {row:?}")),
                };
                Ok(Decoded {
                    name: name.clone(),
                    labels: labels(&f[1])?,
                    value: parse_python_f64(token)?,
                    token: Some(token.clone()),
                    exemplar,
                })
            }
            _ => Err(format!("bad row {row:?}")),
        })
        .collect()
}

/// `repr` of a Python int or float: `3`, `0.5`, `1e+300`, `inf`, `-inf`, `nan`.
fn parse_python_f64(repr: &str) -> Result<f64, String> {
    match repr {
        "inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        "nan" => Ok(f64::NAN),
        r => r.parse().map_err(|_| format!("bad python number {r:?}")),
    }
}

/// Just enough JSON to read the python output.
#[derive(Debug)]
enum Json {
    Null,
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut at = 0;
        let value = Json::value(text.as_bytes(), &mut at)?;
        if at != text.len() {
            return Err(format!("junk after JSON at {at}"));
        }
        Ok(value)
    }

    fn value(s: &[u8], at: &mut usize) -> Result<Json, String> {
        while s.get(*at).is_some_and(|b| b.is_ascii_whitespace()) {
            *at += 1;
        }
        match s.get(*at) {
            Some(b'"') => Json::string(s, at).map(Json::Str),
            Some(b'n') if s[*at..].starts_with(b"null") => {
                *at += 4;
                Ok(Json::Null)
            }
            Some(&open @ (b'[' | b'{')) => {
                *at += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                let (mut items, mut pairs) = (Vec::new(), Vec::new());
                loop {
                    while s.get(*at).is_some_and(|b| b.is_ascii_whitespace()) {
                        *at += 1;
                    }
                    match s.get(*at) {
                        Some(&b) if b == close => {
                            *at += 1;
                            break;
                        }
                        Some(b',') => *at += 1,
                        None => return Err("unterminated JSON container".into()),
                        _ if open == b'[' => items.push(Json::value(s, at)?),
                        _ => {
                            let Json::Str(k) = Json::value(s, at)? else {
                                return Err(format!("JSON key is not a string at {at}"));
                            };
                            while s.get(*at).is_some_and(|b| b.is_ascii_whitespace()) {
                                *at += 1;
                            }
                            if s.get(*at) != Some(&b':') {
                                return Err(format!("no : after a JSON key at {at}"));
                            }
                            *at += 1;
                            pairs.push((k, Json::value(s, at)?));
                        }
                    }
                }
                Ok(if open == b'[' {
                    Json::Arr(items)
                } else {
                    Json::Obj(pairs)
                })
            }
            other => Err(format!("unexpected JSON {other:?} at {at}")),
        }
    }

    fn hex4(s: &[u8], at: &mut usize) -> Result<u32, String> {
        let digits = s.get(*at..*at + 4).ok_or("short \\u escape")?;
        *at += 4;
        u32::from_str_radix(std::str::from_utf8(digits).unwrap_or("x"), 16)
            .map_err(|_| format!("bad \\u escape {digits:?}"))
    }

    fn string(s: &[u8], at: &mut usize) -> Result<String, String> {
        *at += 1;
        let mut out = String::new();
        loop {
            let b = *s.get(*at).ok_or("unterminated JSON string")?;
            *at += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let e = *s.get(*at).ok_or("unterminated JSON escape")?;
                    *at += 1;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut code = Json::hex4(s, at)?;
                            if (0xd800..0xdc00).contains(&code) {
                                if !s[*at..].starts_with(b"\\u") {
                                    return Err(format!("lone surrogate \\u{code:04x}"));
                                }
                                *at += 2;
                                let low = Json::hex4(s, at)?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return Err(format!("bad surrogate pair {code:04x} {low:04x}"));
                                }
                                code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                            }
                            char::from_u32(code)
                                .ok_or_else(|| format!("lone surrogate \\u{code:04x}"))?
                        }
                        e => return Err(format!("bad JSON escape \\{}", e as char)),
                    });
                }
                b if b.is_ascii() && b >= 0x20 => out.push(b as char),
                b => return Err(format!("byte {b:#04x} in JSON from ensure_ascii=True")),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Checking

/// A value for a failure message: `{:?}`, cut after 160 chars.
fn show(s: &str) -> String {
    let debug = format!("{s:?}");
    match debug.char_indices().nth(160) {
        None => debug,
        Some((cut, _)) => format!("{}… ({} bytes)", &debug[..cut], s.len()),
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Checks that `samples` are exactly the series of `model`, each once, with
/// the recorded values; `ordered` also checks label order and `exemplars`
/// whether exemplars are expected (OpenMetrics).
fn verify(
    reader: &str,
    samples: &[Decoded],
    constant: &str,
    model: &HashMap<Key, Expected>,
    ordered: bool,
    exemplars: bool,
) -> Result<(), String> {
    let mut seen = HashSet::new();
    for s in samples {
        let fail = |what: String| {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={}", show(v)))
                .collect();
            Err(format!(
                "{reader}: {what}\n  sample {} {{{}}} {}",
                s.name,
                labels.join(", "),
                s.value
            ))
        };
        let suffix = s.name.strip_prefix(HISTOGRAM).unwrap_or("");
        let mut want: Vec<&str> = LABEL_NAMES.to_vec();
        if suffix == "_bucket" {
            want.push("le");
        }
        let mut names: Vec<&str> = s.labels.iter().map(|(k, _)| k.as_str()).collect();
        if !ordered {
            names.sort_unstable();
            want.sort_unstable();
        }
        if names != want {
            return fail(format!("label names {names:?}, want {want:?}"));
        }
        let label = |name: &str| -> &str {
            let found = s.labels.iter().find(|(k, _)| k == name);
            found.map_or("", |(_, v)| v.as_str())
        };
        if label(CONST_LABEL) != constant {
            return fail(format!(
                "constant label {} differs from {}",
                show(label(CONST_LABEL)),
                show(constant)
            ));
        }
        let key: Key = (
            label("tenant_id").to_string(),
            label("route").to_string(),
            label("detail").to_string(),
        );
        let Some(e) = model.get(&key) else {
            return fail("a series nobody recorded: a value was altered".into());
        };
        let le = label("le");
        if !seen.insert((s.name.clone(), key.clone(), le.to_string())) {
            return fail("the series appears twice".into());
        }
        // (integer the sample must show exactly, or a float)
        let (integer, float) = match (s.name.as_str(), suffix) {
            (COUNTER, _) => (Some(e.count), None),
            (GAUGE, _) => (None, Some(e.gauge)),
            (_, "_bucket") => {
                let Some(i) = LE.iter().position(|l| *l == le) else {
                    return fail(format!("unexpected le {le:?}"));
                };
                let want = match (&e.exemplars[i], exemplars) {
                    (Some((trace, value)), true) => Some((trace, *value)),
                    _ => None,
                };
                let got = s.exemplar.as_ref();
                let ok = match (want, got) {
                    (None, None) => true,
                    (Some((trace, value)), Some((labels, got))) => {
                        let mut labels = labels.clone();
                        labels.sort();
                        labels
                            == [
                                ("span_id".to_string(), format!("{:016x}", trace.span_id)),
                                ("trace_id".to_string(), format!("{:032x}", trace.trace_id)),
                            ]
                            && same(value, *got)
                    }
                    _ => false,
                };
                if !ok {
                    return fail(format!("exemplar {got:?}, want {want:?}"));
                }
                (Some(e.buckets[..=i].iter().sum()), None)
            }
            (_, "_sum") => (None, Some(e.sum)),
            (_, "_count") => (Some(e.buckets.iter().sum()), None),
            _ => return fail("unexpected sample name".into()),
        };
        if let Some(want) = integer {
            let exact = s.token.as_ref().is_none_or(|t| *t == want.to_string());
            if !exact || !same(s.value, want as f64) {
                return fail(format!("value {:?}, want {want}", s.token));
            }
        }
        if let Some(want) = float
            && !same(s.value, want)
        {
            return fail(format!(
                "value {:?} ({:?}), want {want:?}",
                s.value, s.token
            ));
        }
    }
    let want = model.len() * SAMPLES_PER_SERIES;
    if seen.len() != want {
        return Err(format!(
            "{reader}: {} samples, want {want} ({} series): series were lost or merged",
            seen.len(),
            model.len()
        ));
    }
    Ok(())
}

/// After a tool rejected a body: finds one series that the tool rejects on
/// its own, and says what it holds.
fn culprit(batch: &Batch, format: Format, check: impl Fn(&str) -> Result<(), String>) -> String {
    let mut keys: Vec<Key> = Vec::new();
    for op in &batch.ops {
        if !keys.contains(&key(op)) {
            keys.push(key(op));
        }
    }
    for k in keys {
        let ops: Vec<Op> = batch
            .ops
            .iter()
            .filter(|op| key(op) == k)
            .cloned()
            .collect();
        let body = record(&batch.constant, &ops).encode(format);
        if let Err(message) = check(&body) {
            // The end of a message holds the reason (a traceback ends with it).
            let lines: Vec<&str> = message.trim().lines().collect();
            let reason = lines[lines.len().saturating_sub(3)..].join("\n    ");
            let samples: Vec<String> = body
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(show)
                .collect();
            return format!(
                "rejected on its own: tenant {}, route {}, detail {}, constant {}\n  tool: {reason}\n  samples:\n    {}",
                k.0,
                show(&k.1),
                show(&k.2),
                show(&batch.constant),
                samples.join("\n    ")
            );
        }
    }
    "every series passes on its own".into()
}

/// A kind of input, and how to tell a value is of that kind.
type Kind = (&'static str, fn(&str) -> bool);

/// The kinds of input every run must include, whatever the seed.
const KINDS: &[Kind] = &[
    ("empty", str::is_empty),
    ("astral plane", |v| v.chars().any(|c| c > '\u{FFFF}')),
    ("combining mark", |v| {
        v.chars().any(|c| ('\u{300}'..='\u{36F}').contains(&c))
    }),
    ("right-to-left", |v| {
        v.chars().any(|c| ('\u{5D0}'..='\u{6FF}').contains(&c))
    }),
    ("bidi control", |v| {
        v.chars().any(|c| RTL_MARKS.contains(&c))
    }),
    ("U+FEFF", |v| v.contains('\u{FEFF}')),
    ("U+2028", |v| v.contains('\u{2028}')),
    ("U+2029", |v| v.contains('\u{2029}')),
    ("NUL", |v| v.contains('\0')),
    ("other C0 control", |v| {
        v.chars()
            .any(|c| c.is_ascii_control() && !"\0\t\r\n".contains(c))
    }),
    ("tab", |v| v.contains('\t')),
    ("CR", |v| v.contains('\r')),
    ("LF", |v| v.contains('\n')),
    ("quote", |v| v.contains('"')),
    ("backslash", |v| v.contains('\\')),
    ("braces", |v| v.contains('{') && v.contains('}')),
    ("comma", |v| v.contains(',')),
    ("equals", |v| v.contains('=')),
    ("hash", |v| v.contains('#')),
    ("leading space", |v| v.starts_with(' ')),
    ("trailing space", |v| v.ends_with(' ')),
    ("escaped newline look-alike", |v| v.contains("\\n")),
    ("escaped quote look-alike", |v| v.contains("\\\"")),
    ("lossy-decoded bytes", |v| v.contains('\u{FFFD}')),
    ("64 KiB", |v| v.len() == LONG),
];

fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={s:?} is not a u64")),
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Rng(now.as_nanos() as u64 ^ u64::from(std::process::id())).next()
        }
    }
}

#[test]
fn arbitrary_label_values_round_trip_through_both_encoders_and_the_real_tools() {
    let seed = seed();
    // Shown by the test harness when the test fails.
    println!("seed {seed}: replay with {SEED_ENV}={seed}");
    let promtool = support::have_promtool();
    let python = support::have_openmetrics_parser();
    let mut rng = Rng(seed);
    let mut values = 0;
    let mut missing: Vec<&str> = KINDS.iter().map(|(kind, _)| *kind).collect();
    for index in 0..BATCHES {
        let batch = batch(&mut rng, index);
        let model = model(&batch.ops);
        values += 2 * model.len();
        for (_, route, detail) in model.keys() {
            missing.retain(|kind| {
                let (_, has) = KINDS.iter().find(|(k, _)| k == kind).unwrap();
                !has(route) && !has(detail)
            });
        }
        let t = record(&batch.constant, &batch.ops);
        let prometheus = t.encode(Format::Prometheus);
        let openmetrics = t.encode(Format::OpenMetrics);
        let context = format!("seed {seed} ({SEED_ENV}={seed}), batch {index}");
        let check = |reader: &str,
                     decoded: Result<Vec<Decoded>, String>,
                     ordered: bool,
                     exemplars: bool| {
            let result = decoded.and_then(|samples| {
                verify(
                    reader,
                    &samples,
                    &batch.constant,
                    &model,
                    ordered,
                    exemplars,
                )
            });
            if let Err(e) = result {
                panic!("{context}: {reader}: {e}");
            }
        };
        std::thread::scope(|s| {
            let promtool = promtool.then(|| s.spawn(|| support::promtool_check(&prometheus)));
            let counted = python.then(|| s.spawn(|| support::openmetrics_check(&openmetrics)));
            let read_back = python.then(|| s.spawn(|| decode_with_python(&openmetrics)));

            let own = decode_prometheus(&prometheus);
            check("strict 0.0.4 decoder", own, true, false);
            let scraped = decode_with_scrape(&openmetrics);
            check("Scrape::parse of OpenMetrics", scraped, false, true);
            let scraped = decode_with_scrape(&prometheus);
            check("Scrape::parse of 0.0.4", scraped, false, false);

            if let Some(promtool) = promtool
                && let Err(e) = promtool.join().unwrap()
            {
                let found = culprit(&batch, Format::Prometheus, support::promtool_check);
                panic!("{context}: promtool rejects the 0.0.4 body: {e}\n{found}");
            }
            if let Some(counted) = counted {
                match counted.join().unwrap() {
                    Ok(n) => assert_eq!(
                        n,
                        model.len() * SAMPLES_PER_SERIES,
                        "{context}: reference parser sample count"
                    ),
                    Err(e) => {
                        let check = |body: &str| support::openmetrics_check(body).map(|_| ());
                        let found = culprit(&batch, Format::OpenMetrics, check);
                        panic!("{context}: the reference parser rejects the body: {e}\n{found}");
                    }
                }
            }
            if let Some(read_back) = read_back {
                let read_back = read_back.join().unwrap();
                check("reference OpenMetrics parser", read_back, false, true);
            }
        });
    }
    assert!(values >= 4000, "{values} values");
    assert!(
        missing.is_empty(),
        "seed {seed}: no value of kind {missing:?}"
    );
}

#[test]
fn the_test_readers_are_strict() {
    let json = r#"[["a", {"k": "\ud83d\ude00\u0000\"\\\n\u2028"}, "nan", null]]"#;
    let Json::Arr(rows) = Json::parse(json).unwrap() else {
        panic!("not a list")
    };
    let Json::Arr(row) = &rows[0] else { panic!() };
    let Json::Obj(labels) = &row[1] else { panic!() };
    assert!(matches!(&labels[0].1, Json::Str(v) if v == "😀\0\"\\\n\u{2028}"));
    assert!(Json::parse(r#""\udc00""#).is_err());
    assert!(Json::parse(r#""\ud800x""#).is_err());

    let good = "# TYPE x gauge\nx{a=\"q\\\"\\\\\\n\r\",b=\"\"} -Inf\n";
    let samples = decode_prometheus(good).unwrap();
    assert_eq!(samples[0].labels[0].1, "q\"\\\n\r");
    assert_eq!(samples[0].value, f64::NEG_INFINITY);
    for bad in [
        "x{a=\"\\t\"} 1\n",
        "x{a=\"b\"} 1",
        "x{a=\"b} 1\n",
        "x{a=\"b\"c} 1\n",
        "x{a=\"b\"}  1\n",
        "x{a=\"b\"} 1 2\n",
        "x 1\n",
    ] {
        assert!(decode_prometheus(bad).is_err(), "{bad:?}");
    }
}

/// A negative observation makes the sum negative; OpenMetrics 1.0 says a
/// histogram's sum "MUST NOT be NaN or negative" (the reference parser
/// rejects such a body), so the OpenMetrics encoder leaves it out, while
/// Prometheus text 0.0.4 keeps it.
#[test]
fn negative_histogram_observation_keeps_the_openmetrics_body_valid() {
    let t = Telemetry::builder()
        .with_process_metrics(false)
        .build()
        .unwrap();
    let h = t
        .histogram::<()>("temperature_change_celsius", "Change.")
        .unwrap();
    h.observe(&t.tenant("acme"), &(), -1.0);
    let body = t.encode(Format::OpenMetrics);
    // OpenMetrics: no sum for a histogram that observed negative values;
    // 0.0.4 keeps it.
    assert!(!body.contains("temperature_change_celsius_sum"), "{body}");
    assert!(!body.contains("temperature_change_celsius_count"), "{body}");
    assert!(body.contains("temperature_change_celsius_bucket{tenant_id=\"acme\",le=\"+Inf\"} 1\n"));
    assert!(
        t.encode(Format::Prometheus)
            .contains("temperature_change_celsius_sum{tenant_id=\"acme\"} -1\n")
    );
    if support::have_openmetrics_parser() {
        // Buckets (default bounds and +Inf), no sum or a valid one, count.
        let buckets = plimsoll::DEFAULT_DURATION_BUCKETS.len() + 1;
        let samples = support::openmetrics_check(&body);
        assert!(
            matches!(samples, Ok(n) if n == buckets),
            "{samples:?}\n{body}"
        );
    }
}
