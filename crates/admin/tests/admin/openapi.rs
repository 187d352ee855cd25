//! `docs/openapi.json` documents exactly the router's routes, each with its responses.

use std::collections::BTreeSet;

use bascule_admin::ROUTES;
use bascule_admin::http::OPENAPI;
use serde_json::Value;

#[test]
fn openapi_documents_exactly_the_routes() {
    let document: Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json is JSON");
    assert_eq!(document["openapi"], "3.1.0");
    assert!(
        document["info"]["title"]
            .as_str()
            .unwrap()
            .contains("Bascule")
    );
    let paths = document["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            documented.insert((method.to_uppercase(), path.clone()));
            let responses = operation["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path}");
            assert!(
                operation["operationId"].is_string() && operation["summary"].is_string(),
                "{method} {path}: operationId and summary"
            );
            // Every path parameter is declared, on the operation or on the path.
            let declared: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .chain(item["parameters"].as_array())
                .flatten()
                .filter_map(|parameter| {
                    let parameter = resolve(&document, parameter);
                    (parameter["in"] == "path").then(|| parameter["name"].as_str().unwrap())
                })
                .collect();
            for name in path
                .split('/')
                .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
            {
                assert!(
                    declared.contains(&name),
                    "{method} {path}: parameter {name}"
                );
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|&(method, path)| (method.to_string(), path.to_string()))
        .collect();
    let missing: Vec<_> = expected.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    // Every reference resolves, in the paths and in the components.
    check_refs(&document, &document);
    // The error schema and the security note are there.
    let error = &document["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error", "message"]));
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    assert!(schemes.values().any(|scheme| scheme["in"] == "cookie"));
    assert!(
        schemes
            .values()
            .any(|scheme| scheme["name"] == "X-CSRF-Token")
    );
}

fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            document
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} does not resolve"))
        }
        None => value,
    }
}

fn check_refs(document: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                let pointer = reference.strip_prefix('#').expect("a local reference");
                assert!(
                    document.pointer(pointer).is_some(),
                    "{reference} does not resolve"
                );
            }
            map.values().for_each(|child| check_refs(document, child));
        }
        Value::Array(items) => items.iter().for_each(|child| check_refs(document, child)),
        _ => {}
    }
}
