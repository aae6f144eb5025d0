//! Every knob in the chart's values.yaml is documented, and docs/install.md lists them all.
//!
//! The rule in values.yaml: a key whose comment starts with `# --` is a documented value (its
//! nested lines are its default); a key with any other comment is a group whose children are
//! documented one by one; a key with no comment fails this test. The table in docs/install.md
//! between the `values:begin` and `values:end` markers is generated from those comments and must
//! match; `UPDATE_VALUES_DOC=1 cargo test --test chart_values` rewrites it.

use std::path::Path;

use serde_json::Value;

const VALUES: &str = "charts/incident-operator/values.yaml";
const INSTALL_DOC: &str = "docs/install.md";
const BEGIN: &str = "<!-- values:begin (generated from values.yaml by tests/chart_values.rs) -->";
const END: &str = "<!-- values:end -->";

/// One documented value: its dotted path, its description and its default as JSON.
#[derive(Debug, PartialEq)]
struct DocumentedValue {
    path: String,
    description: String,
    default: String,
}

/// The documented values of `text`, in file order, or the lines that break the rule.
fn documented_values(text: &str) -> Result<Vec<DocumentedValue>, Vec<String>> {
    let parsed: Value = serde_saphyr::from_str(text).map_err(|e| vec![format!("not YAML: {e}")])?;
    let lines: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    let mut values = Vec::new();
    // Open groups: (indent, key).
    let mut groups: Vec<(usize, String)> = Vec::new();
    // Indent of the documented value whose nested lines are being skipped.
    let mut inside_value: Option<usize> = None;

    for (number, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("- ") {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        if inside_value.is_some_and(|at| indent > at) {
            continue;
        }
        inside_value = None;
        while groups.last().is_some_and(|(at, _)| *at >= indent) {
            groups.pop();
        }
        let comment = comment_above(&lines, number, indent);
        let path: Vec<&str> = groups
            .iter()
            .map(|(_, k)| k.as_str())
            .chain([key])
            .collect();
        let dotted = path.join(".");
        match comment {
            Some(text) if text.starts_with("-- ") => {
                let default = path
                    .iter()
                    .try_fold(&parsed, |node, k| node.get(k))
                    .map(|v| serde_json::to_string(v).unwrap_or_default())
                    .unwrap_or_default();
                values.push(DocumentedValue {
                    path: dotted,
                    description: text.trim_start_matches("-- ").to_string(),
                    default,
                });
                inside_value = Some(indent);
            }
            Some(_) => groups.push((indent, key.to_string())),
            None => problems.push(format!(
                "{VALUES}:{}: `{dotted}` has no comment above it",
                number + 1
            )),
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// The comment block directly above line `number` at the same indent, joined into one line.
fn comment_above(lines: &[&str], number: usize, indent: usize) -> Option<String> {
    let mut block = Vec::new();
    for line in lines[..number].iter().rev() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('#') || line.len() - trimmed.len() != indent {
            break;
        }
        block.push(trimmed.trim_start_matches('#').trim());
    }
    if block.is_empty() {
        return None;
    }
    block.reverse();
    Some(block.join(" "))
}

/// The Markdown table for docs/install.md.
fn values_table(values: &[DocumentedValue]) -> String {
    let mut out = String::from("| Value | Default | Description |\n|---|---|---|\n");
    for value in values {
        out.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            value.path,
            value.default.replace('|', "\\|"),
            value.description.replace('|', "\\|")
        ));
    }
    out
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_value_has_a_comment() {
    let text = std::fs::read_to_string(root().join(VALUES)).expect("values.yaml");
    let values =
        documented_values(&text).unwrap_or_else(|problems| panic!("{}", problems.join("\n")));
    assert!(
        values.len() > 50,
        "only {} documented values?",
        values.len()
    );
    for value in &values {
        assert!(
            value.description.len() >= 10,
            "`{}` is documented too briefly: {:?}",
            value.path,
            value.description
        );
        assert!(!value.default.is_empty(), "`{}` has no default", value.path);
    }
}

#[test]
fn install_doc_lists_every_value() {
    let text = std::fs::read_to_string(root().join(VALUES)).expect("values.yaml");
    let values =
        documented_values(&text).unwrap_or_else(|problems| panic!("{}", problems.join("\n")));
    let table = values_table(&values);
    let doc_path = root().join(INSTALL_DOC);
    let doc = std::fs::read_to_string(&doc_path).expect("docs/install.md");
    let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("{INSTALL_DOC} lacks the markers {BEGIN} … {END}");
    };
    let start = begin + BEGIN.len() + 1;
    let current = &doc[start..end];
    if current == table {
        return;
    }
    if std::env::var_os("UPDATE_VALUES_DOC").is_some() {
        let updated = format!("{}{}{}", &doc[..start], table, &doc[end..]);
        std::fs::write(&doc_path, updated).expect("rewrite docs/install.md");
        return;
    }
    panic!(
        "the values table in {INSTALL_DOC} is out of date; run `UPDATE_VALUES_DOC=1 cargo test --test chart_values`"
    );
}

#[test]
fn rule_catches_undocumented_keys_and_skips_nested_defaults() {
    let text = "\
# A group.
group:
  # -- A documented value with a nested default.
  resources:
    requests:
      cpu: 1
  # -- A list.
  list:
    - a
  missing: 3
";
    let problems = documented_values(text).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("`group.missing`"), "{problems:?}");

    let good = "# G.\ng:\n  # -- Multi\n  # line.\n  v: 5\n";
    assert_eq!(
        documented_values(good).unwrap(),
        vec![DocumentedValue {
            path: "g.v".into(),
            description: "Multi line.".into(),
            default: "5".into()
        }]
    );
}
