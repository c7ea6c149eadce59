//! Ported in spirit from upstream `fields/selector_test.go`.

use std::collections::BTreeMap;

use super::*;

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sel_matches(selector: &str, fields: &BTreeMap<String, String>) -> bool {
    FieldSelector::parse(selector)
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .matches(|f| fields.get(f).cloned())
}

fn err(selector: &str) -> String {
    match FieldSelector::parse(selector) {
        Ok(s) => panic!("{selector}: expected an error, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn split_terms_cases() {
    let cases: &[(&str, &[&str])] = &[
        ("a", &["a"]),
        ("a=avalue", &["a=avalue"]),
        ("a=avalue,b=bvalue", &["a=avalue", "b=bvalue"]),
        (
            "a=avalue,b==bvalue,c!=cvalue",
            &["a=avalue", "b==bvalue", "c!=cvalue"],
        ),
        ("", &[]),
        ("a=a,", &["a=a", ""]),
        (",a=a", &["", "a=a"]),
        (r"k=\,,k2=v2", &[r"k=\,", "k2=v2"]),
        (r"k=\\,k2=v2", &[r"k=\\", "k2=v2"]),
        (r"k=\\\,,k2=v2", &[r"k=\\\,", "k2=v2"]),
        (r"k=\a\b\", &[r"k=\a\b\"]),
        (r"k=\", &[r"k=\"]),
        ("함=수,목=록", &["함=수", "목=록"]),
    ];
    for (input, want) in cases {
        assert_eq!(split_terms(input), *want, "{input}");
    }
}

#[test]
fn split_term_cases() {
    use FieldOperator::*;
    assert_eq!(split_term("a=value"), Some(("a", Equals, "value")));
    assert_eq!(split_term("b==value"), Some(("b", Equals, "value")));
    assert_eq!(split_term("c!=value"), Some(("c", NotEquals, "value")));
    assert_eq!(split_term(""), None);
    assert_eq!(split_term("a"), None);
    assert_eq!(split_term(r"k=\,"), Some(("k", Equals, r"\,")));
    assert_eq!(split_term(r"k=\="), Some(("k", Equals, r"\=")));
    assert_eq!(
        split_term(r"k=\\\a\b\=\,\"),
        Some(("k", Equals, r"\\\a\b\=\,\"))
    );
    assert_eq!(split_term("함=수"), Some(("함", Equals, "수")));
    assert_eq!(split_term("a!b=c"), Some(("a!b", Equals, "c")));
}

#[test]
fn escape_round_trip() {
    for (raw, escaped) in [
        ("", ""),
        ("a", "a"),
        ("=", r"\="),
        (",", r"\,"),
        (r"\", r"\\"),
        (r"\=\,\", r"\\\=\\\,\\"),
    ] {
        assert_eq!(escape_value(raw), escaped);
        assert_eq!(unescape_value(escaped).as_deref(), Ok(raw));
    }
    for bad in [r"\", r"\\\", r"\a"] {
        let e = unescape_value(bad).expect_err(bad).to_string();
        assert!(e.contains("invalid escape sequence"), "{e}");
    }
    assert_eq!(
        unescape_value(r"\a").map_err(|e| e.to_string()),
        Err(r"invalid field selector: invalid escape sequence: \a".to_string())
    );
    assert_eq!(
        unescape_value(r"x\").map_err(|e| e.to_string()),
        Err(r"invalid field selector: invalid escape sequence: \".to_string())
    );
}

#[test]
fn good_strings_round_trip() {
    for s in ["x=a,y=b,z=c", "", "x!=a,y=b", r"x=a||y\=b", r"x=a\=\=b"] {
        let sel = FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(sel.to_string(), s);
    }
    // `==` prints as `=`, terms print sorted.
    assert_eq!(
        FieldSelector::parse("status.phase==Running,metadata.name=a")
            .map(|s| s.to_string())
            .as_deref(),
        Ok("metadata.name=a,status.phase=Running")
    );
}

#[test]
fn bad_strings_and_messages() {
    assert_eq!(
        err("x=a||y=b"),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        err("x==a==b"),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        err("x=a,b"),
        "invalid selector: 'x=a,b'; can't understand 'b'"
    );
    assert_eq!(
        err("x in (a)"),
        "invalid selector: 'x in (a)'; can't understand 'x in (a)'"
    );
    assert_eq!(
        err("x in (a,b,c)"),
        "invalid selector: 'x in (a,b,c)'; can't understand 'b'"
    );
    assert_eq!(err("x"), "invalid selector: 'x'; can't understand 'x'");
    assert_eq!(
        err(r"a=b\c"),
        r"invalid field selector: invalid escape sequence: \c"
    );
}

#[test]
fn deterministic() {
    let a = FieldSelector::parse("x=a,a=x").map(|s| s.to_string());
    let b = FieldSelector::parse("a=x,x=a").map(|s| s.to_string());
    assert_eq!(a, b);
    assert_eq!(a.as_deref(), Ok("a=x,x=a"));
}

#[test]
fn matching() {
    let s = set(&[("x", "y")]);
    assert!(sel_matches("", &s));
    assert!(sel_matches("x=y", &s));
    assert!(sel_matches("x=y,z=w", &set(&[("x", "y"), ("z", "w")])));
    assert!(sel_matches("x!=y,z!=w", &set(&[("x", "z"), ("z", "a")])));
    assert!(sel_matches("notin=in", &set(&[("notin", "in")])));
    assert!(!sel_matches("x=y", &set(&[("x", "z")])));
    assert!(!sel_matches("x=y,z=w", &set(&[("x", "w"), ("z", "w")])));
    assert!(!sel_matches("x!=y,z!=w", &set(&[("x", "z"), ("z", "w")])));

    let fs = set(&[("foo", "bar"), ("baz", "blah"), ("complex", r"=value\,\")]);
    assert!(sel_matches("foo=bar", &fs));
    assert!(sel_matches("baz=blah", &fs));
    assert!(sel_matches("foo=bar,baz=blah", &fs));
    assert!(sel_matches(r"foo=bar,baz=blah,complex=\=value\\\,\\", &fs));
    assert!(!sel_matches("foo=blah", &fs));
    assert!(!sel_matches("baz=bar", &fs));
    assert!(!sel_matches("foo=bar,foobar=bar,baz=blah", &fs));

    // Missing fields read as "".
    assert!(sel_matches("missing=", &fs));
    assert!(sel_matches("missing!=x", &fs));
    assert!(!sel_matches("missing!=", &fs));
}

#[test]
fn requirements_and_exact_match() {
    let s = FieldSelector::parse("spec.nodeName=n1,metadata.namespace!=kube-system,a==b")
        .expect("valid");
    assert_eq!(
        s.requirements(),
        &[
            FieldRequirement {
                field: "a".into(),
                operator: FieldOperator::Equals,
                value: "b".into()
            },
            FieldRequirement {
                field: "metadata.namespace".into(),
                operator: FieldOperator::NotEquals,
                value: "kube-system".into()
            },
            FieldRequirement {
                field: "spec.nodeName".into(),
                operator: FieldOperator::Equals,
                value: "n1".into()
            },
        ]
    );
    assert_eq!(s.requires_exact_match("spec.nodeName"), Some("n1"));
    assert_eq!(s.requires_exact_match("metadata.namespace"), None);
    assert_eq!(s.requires_exact_match("other"), None);
    assert_eq!(
        FieldSelector::parse("metadata.name=")
            .expect("valid")
            .requires_exact_match("metadata.name"),
        Some("")
    );
}

#[test]
fn empty_and_nothing() {
    assert!(FieldSelector::everything().is_empty());
    assert!(FieldSelector::parse("").expect("valid").is_empty());
    assert!(FieldSelector::parse(",,").expect("valid").is_empty());
    // A bare operator with empty sides is dropped, as upstream's Transform does.
    assert!(FieldSelector::parse("=").expect("valid").is_empty());
    assert!(FieldSelector::parse("!=,==").expect("valid").is_empty());
    assert!(!FieldSelector::parse("a=").expect("valid").is_empty());
    let n = FieldSelector::nothing();
    assert!(!n.is_empty());
    assert!(n.is_nothing());
    assert!(!n.matches(|_| None));
    assert_eq!(n.to_string(), "");
}
