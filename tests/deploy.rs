//! The configurations in `deploy/` pass the validators a machine has
//! (`promtool check config` with its rules, `amtool check-config`,
//! `docker-compose config`, Kubernetes' schemas), the
//! files generated from `examples/slo.yaml` are what the `plimsoll`
//! command writes today, and the compose file and Kubernetes manifests
//! hold together (a structural check of each: what a field refers to
//! exists, selectors select, probes probe the health endpoints).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize as _;
use serde_norway::Value;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn yaml(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy(path)).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .collect()
}

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{tool} {args:?}:\n{text}");
    text
}

#[test]
fn prometheus_and_alertmanager_configs_pass_their_validators() {
    if support::have_promtool() {
        let config = deploy("prometheus/prometheus.yml");
        let out = run("promtool", &["check", "config", config.to_str().unwrap()]);
        assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
        // The PrometheusRule's groups are a rule file too.
        let rule = &yaml("kubernetes/prometheusrule.yaml")[0];
        let groups = serde_norway::to_string(&rule["spec"]).unwrap();
        let file = support::scratch_dir("deploy").join("groups.yml");
        std::fs::write(&file, groups).unwrap();
        run("promtool", &["check", "rules", file.to_str().unwrap()]);
    }
    if support::available("amtool", &["--version"]) {
        let config = deploy("alertmanager/alertmanager.yml");
        let out = run("amtool", &["check-config", config.to_str().unwrap()]);
        assert!(out.contains("- 2 receivers"), "{out}");
        // Pages and tickets go where the comments say.
        for (severity, receiver) in [("page", "page"), ("ticket", "ticket")] {
            let out = run(
                "amtool",
                &[
                    "config",
                    "routes",
                    "test",
                    &format!("--config.file={}", config.display()),
                    &format!("severity={severity}"),
                    "alertname=SloErrorBudgetBurn",
                ],
            );
            assert_eq!(out.lines().next(), Some(receiver), "{out}");
        }
    }
}

#[test]
fn generated_files_are_what_the_command_writes_today() {
    let built = std::env::current_exe().unwrap();
    let cli = built
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("plimsoll");
    if !cli.exists() {
        assert!(
            !support::services_required(),
            "{} is missing: cargo test --workspace --all-features builds it",
            cli.display()
        );
        return;
    }
    let slo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/slo.yaml");
    let slo = slo.to_str().unwrap();
    let cli = cli.to_str().unwrap();
    for (file, args) in [
        ("prometheus/rules.yml", vec!["rules", "--slo", slo]),
        (
            "kubernetes/prometheusrule.yaml",
            vec![
                "rules",
                "--slo",
                slo,
                "--format",
                "prometheus-rule",
                "--name",
                "orders-api",
            ],
        ),
        (
            "grafana/dashboards/orders-api.json",
            vec!["dashboard", "--slo", slo, "--title", "Orders API"],
        ),
    ] {
        let now = run(cli, &args);
        let kept = std::fs::read_to_string(deploy(file)).unwrap();
        assert!(
            now == kept,
            "deploy/{file} is out of date: regenerate it with `plimsoll {}` (see docs/deployment.md)",
            args.join(" ")
        );
    }
}

/// `value[key]` as a string.
fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value:?}"))
}

#[test]
fn kubernetes_manifests_hold_together() {
    let mut docs = yaml("kubernetes/orders-api.yaml");
    docs.extend(yaml("kubernetes/servicemonitor.yaml"));
    docs.extend(yaml("kubernetes/prometheusrule.yaml"));
    for doc in &docs {
        for key in ["apiVersion", "kind"] {
            assert!(doc[key].is_string(), "{key} missing in {doc:?}");
        }
        assert!(doc["metadata"]["name"].is_string(), "{doc:?}");
    }
    let kind = |k: &str| -> &Value {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let (deployment, service, monitor) =
        (kind("Deployment"), kind("Service"), kind("ServiceMonitor"));
    assert_eq!(text(deployment, "apiVersion"), "apps/v1");
    assert_eq!(text(monitor, "apiVersion"), "monitoring.coreos.com/v1");
    assert_eq!(
        text(kind("PrometheusRule"), "apiVersion"),
        "monitoring.coreos.com/v1"
    );

    // The Deployment's selector selects its pods; the Service selects them
    // too; the ServiceMonitor selects the Service.
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], *pod_labels);
    let selects = |selector: &Value, labels: &Value| {
        let selector = selector.as_mapping().unwrap();
        !selector.is_empty()
            && selector
                .iter()
                .all(|(k, v)| labels[k.as_str().unwrap()] == *v)
    };
    assert!(selects(&service["spec"]["selector"], pod_labels));
    assert!(selects(
        &monitor["spec"]["selector"]["matchLabels"],
        &service["metadata"]["labels"]
    ));

    // Ports by name: the container's, the Service's, the probes', the monitor's.
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let port = &container["ports"][0];
    assert_eq!(text(port, "name"), "http");
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(text(service_port, "targetPort"), "http");
    assert_eq!(
        text(service_port, "name"),
        text(&monitor["spec"]["endpoints"][0], "port")
    );
    assert_eq!(text(&monitor["spec"]["endpoints"][0], "path"), "/metrics");
    let env = container["env"].as_sequence().unwrap();
    let listen = env.iter().find(|e| e["name"] == "PLIMSOLL_ADDR").unwrap();
    assert_eq!(
        text(listen, "value"),
        format!("0.0.0.0:{}", port["containerPort"].as_u64().unwrap())
    );
    // Liveness asks the process, readiness its dependencies.
    for (probe, path) in [
        ("livenessProbe", "/api/v1/health"),
        ("readinessProbe", "/api/v1/ready"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(text(get, "path"), path);
        assert_eq!(text(get, "port"), "http");
    }
}

/// Runs the validator `command` makes for `file`, and for a copy with one
/// field made wrong (`broken`: what to replace, and with what): the file
/// passes, the copy does not, so the validator did read what it was given.
fn validate(command: impl Fn(&Path) -> Command, file: &Path, broken: (&str, &str)) -> String {
    let out = command(file).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}:\n{text}", file.display());
    let original = std::fs::read_to_string(file).unwrap();
    assert!(
        original.contains(broken.0),
        "{}: no {:?}",
        file.display(),
        broken.0
    );
    let copy = support::scratch_dir("deploy").join(file.file_name().unwrap());
    std::fs::write(&copy, original.replacen(broken.0, broken.1, 1)).unwrap();
    let failed = command(&copy).output().unwrap();
    assert!(
        !failed.status.success(),
        "{} with {broken:?} passed",
        file.display()
    );
    text
}

#[test]
fn compose_file_and_manifests_pass_their_schemas() {
    if support::available("docker-compose", &["--version"]) {
        // `config` checks the file against the compose schema; no daemon.
        // Paths in it are relative to `deploy/`, wherever the file is.
        let compose = |file: &Path| {
            let mut command = Command::new("docker-compose");
            command.arg("--project-directory").arg(deploy(""));
            command.arg("-f").arg(file).args(["config", "-q"]);
            command
        };
        let ports = (r#"ports: ["3000:3000"]"#, "ports: 3000");
        validate(compose, &deploy("compose.yaml"), ports);
    }
    if support::available("python3", &["-m", "kubernetes_validate", "--version"]) {
        // Kubernetes' own schema, strict: no field it does not know.
        let kubernetes = |file: &Path| {
            let mut command = Command::new("python3");
            command
                .args(["-m", "kubernetes_validate", "--strict"])
                .arg(file);
            command
        };
        let port = ("containerPort: 3000", r#"containerPort: "3000""#);
        let out = validate(kubernetes, &deploy("kubernetes/orders-api.yaml"), port);
        for resource in ["deployment/orders-api", "service/orders-api"] {
            let passed = format!("passed for resource {resource}");
            assert!(out.contains(&passed), "{out}");
        }
    }
}

#[test]
fn the_compose_file_refers_to_files_that_exist() {
    let compose = &yaml("compose.yaml")[0];
    let services = compose["services"].as_mapping().unwrap();
    for name in [
        "orders-api",
        "prometheus",
        "alertmanager",
        "grafana",
        "otel-collector",
    ] {
        assert!(services.contains_key(name), "no {name} service");
    }
    for (name, service) in services {
        let name = name.as_str().unwrap();
        assert!(
            service["image"].is_string() || service["build"].is_mapping(),
            "{name}: neither image nor build"
        );
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let host = volume.as_str().unwrap().split(':').next().unwrap();
            assert!(deploy(host).exists(), "{name}: {host} does not exist");
        }
        for depends in service["depends_on"].as_sequence().into_iter().flatten() {
            assert!(
                services.contains_key(depends),
                "{name} depends on {depends:?}"
            );
        }
    }
    let build = &services["orders-api"]["build"];
    let context = deploy(text(build, "context"));
    assert!(context.join(text(build, "dockerfile")).exists());
    // Prometheus scrapes the service by its compose name and port, and
    // sends alerts to Alertmanager's.
    let prometheus = &yaml("prometheus/prometheus.yml")[0];
    let target = prometheus["scrape_configs"][0]["static_configs"][0]["targets"][0].as_str();
    let target = target.unwrap();
    assert_eq!(target, "orders-api:3000");
    let alertmanager = &prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"];
    assert_eq!(alertmanager[0].as_str(), Some("alertmanager:9093"));
    // Grafana's dashboards provider reads where the compose file mounts them.
    let provider = &yaml("grafana/provisioning/dashboards/plimsoll.yml")[0]["providers"][0];
    let mounted = services["grafana"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|v| {
            v.as_str()
                .unwrap()
                .ends_with(&format!(":{}:ro", text(&provider["options"], "path")))
        });
    assert!(mounted, "{provider:?}");
    let datasource = &yaml("grafana/provisioning/datasources/prometheus.yml")[0]["datasources"][0];
    assert_eq!(text(datasource, "type"), "prometheus");
    assert_eq!(text(datasource, "url"), "http://prometheus:9090");
    // The collector's pipeline uses what it defines.
    let collector = &yaml("otel-collector/config.yaml")[0];
    let pipeline = &collector["service"]["pipelines"]["traces"];
    for (part, section) in [
        ("receivers", "receivers"),
        ("exporters", "exporters"),
        ("processors", "processors"),
    ] {
        for used in pipeline[part].as_sequence().unwrap() {
            assert!(
                collector[section].as_mapping().unwrap().contains_key(used),
                "{part}: {used:?}"
            );
        }
    }
}
