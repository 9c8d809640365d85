//! `meta.k8s.io/v1` Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), which
//! is what `kubectl get` prints: Name and Age for built-in kinds, a CRD's
//! `additionalPrinterColumns` (evaluated with a small JSONPath subset) for custom resources.

use serde_json::{Value, json};

use crate::resources::{PrinterColumn, ResourceInfo};

fn column(name: &str, type_: &str, format: &str, description: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn columns(info: &ResourceInfo) -> Vec<PrinterColumn> {
    if let Some(c) = info
        .custom
        .as_ref()
        .filter(|c| !c.printer_columns.is_empty())
    {
        return c.printer_columns.clone();
    }
    let mut out = Vec::new();
    if info.group.is_empty()
        && matches!(
            info.kind.as_str(),
            "Pod" | "Namespace" | "PersistentVolumeClaim"
        )
    {
        out.push(PrinterColumn {
            name: "Status".into(),
            type_: "string".into(),
            format: String::new(),
            description: "The phase of the object.".into(),
            priority: 0,
            json_path: ".status.phase".into(),
        });
    }
    out.push(PrinterColumn {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    });
    out
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[*].b`,
/// `.a[?(@.type=="Ready")].status`. Several matches are joined with commas.
pub fn json_path(obj: &Value, path: &str) -> Vec<Value> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut cur = vec![obj.clone()];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            rest = &r[end..];
            if key.is_empty() {
                continue;
            }
            cur = cur.iter().filter_map(|v| v.get(key).cloned()).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Vec::new();
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            cur = cur.iter().flat_map(|v| index(v, inner)).collect();
        } else {
            return Vec::new();
        }
    }
    cur
}

fn index(v: &Value, inner: &str) -> Vec<Value> {
    let Some(arr) = v.as_array() else {
        return Vec::new();
    };
    if inner == "*" {
        return arr.clone();
    }
    if let Ok(i) = inner.parse::<i64>() {
        let i = if i < 0 { arr.len() as i64 + i } else { i };
        return arr.get(i as usize).cloned().into_iter().collect();
    }
    if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')'))
        && let Some((field, want)) = f.split_once("==")
    {
        let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
        let field = field.trim();
        return arr
            .iter()
            .filter(|item| match item.get(field) {
                Some(Value::String(s)) => s == want,
                Some(other) => *other == want,
                None => false,
            })
            .cloned()
            .collect();
    }
    Vec::new()
}

/// apimachinery's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "<invalid>".into();
    }
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn age(ts: &str) -> Option<String> {
    let t: jiff::Timestamp = ts.parse().ok()?;
    Some(human_duration(
        jiff::Timestamp::now().as_second() - t.as_second(),
    ))
}

fn cell(col: &PrinterColumn, obj: &Value) -> Value {
    let found = json_path(obj, &col.json_path);
    if found.is_empty() {
        return Value::Null;
    }
    if col.type_ == "date" {
        return found[0]
            .as_str()
            .and_then(age)
            .map(Value::String)
            .unwrap_or(Value::Null);
    }
    if found.len() == 1 {
        return match &found[0] {
            v @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => v.clone(),
            other => Value::String(other.to_string()),
        };
    }
    let parts: Vec<String> = found
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .collect();
    Value::String(parts.join(","))
}

/// A Table of `items`; `with_columns` is false for watch events after the first.
pub fn table(
    info: &ResourceInfo,
    items: &[Value],
    rv: &str,
    cont: Option<&str>,
    with_columns: bool,
) -> Value {
    let cols = columns(info);
    let mut defs = vec![column(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
        0,
    )];
    for c in &cols {
        defs.push(column(
            &c.name,
            &c.type_,
            &c.format,
            &c.description,
            c.priority,
        ));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let mut cells = vec![obj["metadata"]["name"].clone()];
            cells.extend(cols.iter().map(|c| cell(c, obj)));
            json!({
                "cells": cells,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]},
            })
        })
        .collect();
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": if with_columns { Value::Array(defs) } else { Value::Array(Vec::new()) },
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_path_handles_filters_and_indexes() {
        let o = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}, "spec": {"size": 3}});
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(
            json_path(&o, ".status.conditions[1].type"),
            vec![json!("Synced")]
        );
        assert_eq!(json_path(&o, ".spec.size"), vec![json!(3)]);
        assert!(json_path(&o, ".spec.missing").is_empty());
    }

    #[test]
    fn ages_print_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(3 * 86400), "3d");
    }
}
