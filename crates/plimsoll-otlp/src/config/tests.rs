//! Settings from code and from the environment.

use super::*;
use std::collections::HashMap;

fn resolve(code: &Code, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    code.resolve(&move |name| vars.get(name).cloned())
}

#[test]
fn no_endpoint_means_no_export() {
    let s = resolve(&Code::default(), &[]).unwrap();
    assert_eq!(s.endpoint, None);
    assert_eq!(s.sampler, Sampler::ParentBased(Root::AlwaysOn));
    assert_eq!(s.resource["service.name"], "unknown_service");
    assert_eq!(s.resource["service.instance.id"].len(), 36);
    assert_eq!(&s.resource["service.instance.id"][14..15], "4");
    assert_eq!((s.queue_size, s.batch_size), (2048, 512));
}

#[test]
fn environment_overrides_code() {
    let code = Code {
        service_name: Some("orders".into()),
        endpoint: Some("http://code:4317".into()),
        sampler: Some(Sampler::AlwaysOn),
        ..Code::default()
    };
    let s = resolve(
        &code,
        &[
            ("OTEL_SERVICE_NAME", "orders-eu"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored,deployment.environment.name=prod,team=a%2Cb",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr%20t,x-scope=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Scope=2"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ],
    )
    .unwrap();
    assert_eq!(
        s.endpoint.as_deref(),
        Some("http://collector:4318/v1/traces")
    );
    assert_eq!(s.protocol, Protocol::HttpProtobuf);
    assert_eq!(
        s.headers,
        [
            ("api-key".to_string(), "s3cr t".to_string()),
            ("X-Scope".to_string(), "2".to_string())
        ]
    );
    assert_eq!(s.timeout, Duration::from_millis(2500));
    assert!(s.gzip);
    assert_eq!(s.sampler, Sampler::ParentBased(Root::Ratio(0.25)));
    assert_eq!(s.resource["service.name"], "orders-eu");
    assert_eq!(s.resource["deployment.environment.name"], "prod");
    assert_eq!(s.resource["team"], "a,b");
}

#[test]
fn values_are_case_insensitive_and_a_small_queue_takes_a_small_batch() {
    let s = resolve(
        &Code::default(),
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/PROTOBUF"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP"),
            ("OTEL_TRACES_SAMPLER", "ParentBased_Always_Off"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "256"),
        ],
    )
    .unwrap();
    assert_eq!(s.protocol, Protocol::HttpProtobuf);
    assert!(s.gzip);
    assert_eq!(s.sampler, Sampler::ParentBased(Root::AlwaysOff));
    assert_eq!((s.queue_size, s.batch_size), (256, 256));
    let code = Code {
        batch_size: Some(300),
        ..Code::default()
    };
    let err = resolve(&code, &[("OTEL_BSP_MAX_QUEUE_SIZE", "256")]).unwrap_err();
    assert_eq!(err.field, "batch_size");
}

#[test]
fn the_traces_endpoint_is_used_as_given() {
    let s = resolve(
        &Code::default(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
        ],
    )
    .unwrap();
    assert_eq!(s.endpoint.as_deref(), Some("http://traces:4317"));
    assert_eq!(s.protocol, Protocol::Grpc);
}

#[test]
fn disabled_by_either_variable() {
    let code = Code {
        endpoint: Some("http://c:4317".into()),
        ..Code::default()
    };
    for vars in [
        &[("OTEL_SDK_DISABLED", "true")][..],
        &[("OTEL_TRACES_EXPORTER", "none")][..],
    ] {
        assert_eq!(resolve(&code, vars).unwrap().endpoint, None, "{vars:?}");
    }
    assert!(
        resolve(&code, &[("OTEL_SDK_DISABLED", "false")])
            .unwrap()
            .endpoint
            .is_some()
    );
}

#[test]
fn bad_values_name_their_variable() {
    for (vars, field) in [
        (
            &[("OTEL_TRACES_SAMPLER", "sometimes")][..],
            "OTEL_TRACES_SAMPLER",
        ),
        (
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
            ][..],
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")][..],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")][..],
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")][..],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")][..],
            "OTEL_EXPORTER_OTLP_HEADERS",
        ),
        (
            &[("OTEL_RESOURCE_ATTRIBUTES", "a=%zz")][..],
            "OTEL_RESOURCE_ATTRIBUTES",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "jaeger")][..],
            "OTEL_TRACES_EXPORTER",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")][..],
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ),
        (
            &[("OTEL_BSP_MAX_QUEUE_SIZE", "0")][..],
            "OTEL_BSP_MAX_QUEUE_SIZE",
        ),
        (
            &[
                ("OTEL_BSP_MAX_QUEUE_SIZE", "10"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20"),
            ][..],
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        ),
        (
            &[("OTEL_BSP_EXPORT_TIMEOUT", "0")][..],
            "OTEL_BSP_EXPORT_TIMEOUT",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TIMEOUT", "0")][..],
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ),
        (
            &[("OTEL_BSP_SCHEDULE_DELAY", "0")][..],
            "OTEL_BSP_SCHEDULE_DELAY",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "bad name=1")][..],
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ),
        (&[("RUST_LOG", "info,[")][..], "RUST_LOG"),
        (
            &[("PLIMSOLL_TRACES_FILTER", "app=loud")][..],
            "PLIMSOLL_TRACES_FILTER",
        ),
        (&[("PLIMSOLL_LOG_FORMAT", "xml")][..], "PLIMSOLL_LOG_FORMAT"),
    ] {
        let err = resolve(&Code::default(), vars).unwrap_err();
        assert_eq!(err.field, field, "{vars:?}: {err}");
        assert!(err.to_string().starts_with(field), "{err}");
    }
    let code = Code {
        sampler: Some(Sampler::Ratio(2.0)),
        ..Code::default()
    };
    assert_eq!(resolve(&code, &[]).unwrap_err().field, "sampler");
}
