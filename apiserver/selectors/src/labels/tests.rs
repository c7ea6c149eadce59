//! Ported in spirit from upstream `labels/selector_test.go` and
//! `apis/meta/v1/helpers_test.go`, plus the exact error messages.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

const VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const KEY_MSG: &str = "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(s: &str) -> LabelSelector {
    LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(s: &str) -> String {
    match LabelSelector::parse(s) {
        Ok(sel) => panic!("{s:?}: expected an error, got {sel}"),
        Err(e) => e.to_string(),
    }
}

fn conv_err(v: serde_json::Value) -> String {
    match LabelSelector::from_label_selector(&v) {
        Ok(sel) => panic!("{v}: expected an error, got {sel}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_strings_restring() {
    for s in [
        "x=a,y=b,z=c",
        "",
        "x!=a,y=b",
        "x=",
        "x= ",
        "x=,z= ",
        "x= ,z= ",
        "!x",
        "x>1",
        "x>1,z<5",
    ] {
        assert_eq!(parse(s).to_string(), s.replace(' ', ""), "{s:?}");
    }
}

#[test]
fn bad_strings_exact_messages() {
    let cases = [
        (
            "x=a||y=b",
            format!(
                "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {VALUE_MSG}"
            ),
        ),
        (
            "x==a==b",
            "found '==', expected: ',' or 'end of string'".to_string(),
        ),
        ("!x=a", "found '=', expected: ',' or 'end of string'".to_string()),
        (
            "x<a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".to_string(),
        ),
        (
            "x>1a",
            "unable to parse requirement: values[0]: Invalid value: \"1a\": for 'Gt', 'Lt' operators, the value must be an integer".to_string(),
        ),
        (
            "x>-1",
            format!("unable to parse requirement: values[0][x]: Invalid value: \"-1\": {VALUE_MSG}"),
        ),
        (
            "x in",
            "unable to parse requirement: found '' expected: '('".to_string(),
        ),
        (
            "x in (a",
            "unable to parse requirement: found '', expected: ',' or ')'".to_string(),
        ),
        (
            "x in (a b)",
            "unable to parse requirement: found 'b', expected: ',' or ')'".to_string(),
        ),
        (
            "x in (=)",
            "unable to parse requirement: found '=', expected: ',', ')' or identifier".to_string(),
        ),
        (
            "x in (a,=)",
            "unable to parse requirement: found '=', expected: ',', or identifier".to_string(),
        ),
        ("x,", "found '', expected: identifier after ','".to_string()),
        ("x,=", "found '=', expected: identifier after ','".to_string()),
        (
            ",x",
            "found ',', expected: !, identifier, or 'end of string'".to_string(),
        ),
        (
            "=a",
            "found '=', expected: !, identifier, or 'end of string'".to_string(),
        ),
        (
            "x y",
            "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"
                .to_string(),
        ),
        (
            "x=(a)",
            "unable to parse requirement: found '(', expected: identifier".to_string(),
        ),
        (
            "!",
            "unable to parse requirement: found '', expected: identifier".to_string(),
        ),
        (
            "!!x",
            "unable to parse requirement: found '!', expected: identifier".to_string(),
        ),
        (
            "a/b/c",
            format!("unable to parse requirement: <nil>: Invalid value: \"a/b/c\": {KEY_MSG}"),
        ),
        (
            "x/ in (a)",
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"x/\": name part must be non-empty; {NAME_MSG}"
            ),
        ),
        (
            "x in (b$,a$)",
            format!(
                "unable to parse requirement: [values[0][x]: Invalid value: \"a$\": {VALUE_MSG}, values[1][x]: Invalid value: \"b$\": {VALUE_MSG}]"
            ),
        ),
        (
            &format!("x={}", "v".repeat(64)),
            format!(
                "unable to parse requirement: values[0][x]: Invalid value: \"{}\": must be no more than 63 bytes",
                "v".repeat(64)
            ),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(err(input), want, "{input:?}");
    }
}

#[test]
fn deterministic_parse() {
    assert_eq!(parse("x=a,a=x").to_string(), parse("a=x,x=a").to_string());
    assert_eq!(parse("x=a,a=x").to_string(), "a=x,x=a");
}

#[test]
fn set_based_parsing() {
    let cases = [
        ("", ""),
        ("\rx", "x"),
        (
            "this-is-a-dns.domain.com/key-with-dash",
            "this-is-a-dns.domain.com/key-with-dash",
        ),
        (
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
        ),
        ("foo  in\t (abc)", "foo in (abc)"),
        ("x notin\n (abc)", "x notin (abc)"),
        ("x  notin\t\t\t(abc,def)", "x notin (abc,def)"),
        ("x in (abc,def)", "x in (abc,def)"),
        ("x in (abc,)", "x in (,abc)"),
        ("x in (,abc)", "x in (,abc)"),
        ("x in (a,,b)", "x in (,a,b)"),
        ("x in ()", "x in ()"),
        ("x in (b,a,b)", "x in (a,b)"),
        (
            "x notin (abc,,def),bar,z in (),w",
            "bar,w,x notin (,abc,def),z in ()",
        ),
        ("x,y in (a)", "x,y in (a)"),
        ("x=a", "x=a"),
        ("x>1", "x>1"),
        ("x<7", "x<7"),
        ("x=a,y!=b", "x=a,y!=b"),
        ("x=a,y!=b,z in (h,i,j)", "x=a,y!=b,z in (h,i,j)"),
        ("x=a||y=b", ""),
        ("x==a", "x==a"),
        ("x in (in, notin)", "x in (in,notin)"),
        ("in in (in)", "in in (in)"),
        (
            "environment in (production, qa),tier notin (frontend)",
            "environment in (production,qa),tier notin (frontend)",
        ),
        (
            "tier notin (frontend),environment in (qa, production)",
            "environment in (production,qa),tier notin (frontend)",
        ),
        ("!partition", "!partition"),
        ("partition,!partition", "partition,!partition"),
    ];
    for (input, want) in cases {
        if input == "x=a||y=b" {
            assert!(LabelSelector::parse(input).is_err());
            continue;
        }
        assert_eq!(parse(input).to_string(), want, "{input:?}");
    }
}

#[test]
fn requirement_structure() {
    let s = parse("x notin (abc,,def),bar,z in (),w");
    let got: Vec<(&str, Operator, Vec<&str>)> = s
        .requirements()
        .iter()
        .map(|r| {
            (
                r.key(),
                r.operator(),
                r.values().iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("bar", Operator::Exists, vec![]),
            ("w", Operator::Exists, vec![]),
            ("x", Operator::NotIn, vec!["", "abc", "def"]),
            ("z", Operator::In, vec![""]),
        ]
    );
    assert_eq!(
        parse("!x").requirements()[0].operator(),
        Operator::DoesNotExist
    );
    assert_eq!(
        parse("x==y").requirements()[0].operator(),
        Operator::DoubleEquals
    );
    assert_eq!(
        parse("x>1").requirements()[0].operator(),
        Operator::GreaterThan
    );
}

#[test]
fn selector_matches() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
    let cases: &[Case] = &[
        ("", &[("x", "y")], true),
        ("x=y", &[("x", "y")], true),
        ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
        ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
        ("notin=in", &[("notin", "in")], true),
        ("x", &[("x", "z")], true),
        ("!x", &[("y", "z")], true),
        ("x>1", &[("x", "2")], true),
        ("x<1", &[("x", "0")], true),
        ("x<1", &[("x", "-5")], true),
        ("x=z", &[], false),
        ("x=y", &[("x", "z")], false),
        ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
        ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
        ("x", &[("y", "z")], false),
        ("!x", &[("x", "z")], false),
        ("x>1", &[("x", "0")], false),
        ("x<1", &[("x", "2")], false),
        ("x>1", &[("x", "v2")], false),
        ("x>1", &[], false),
        ("x!=y", &[], true),
        ("x notin (a)", &[], true),
        ("x in (a)", &[], false),
        ("x in ()", &[("x", "")], true),
        ("x in ()", &[("y", "baz")], false),
        ("x notin ()", &[("y", "")], true),
        ("x notin ()", &[("x", "")], false),
        ("x=", &[("x", "")], true),
        (
            "environment in (production, qa),tier notin (frontend)",
            &[("environment", "qa"), ("tier", "backend")],
            true,
        ),
        (
            "environment in (production, qa),tier notin (frontend)",
            &[("environment", "qa")],
            true,
        ),
        (
            "environment in (production, qa),tier notin (frontend)",
            &[("environment", "qa"), ("tier", "frontend")],
            false,
        ),
        (
            "environment in (production, qa),tier notin (frontend)",
            &[("environment", "dev"), ("tier", "backend")],
            false,
        ),
        ("!partition", &[("environment", "qa")], true),
        ("!partition", &[("partition", "")], false),
        ("foo=bar", &[("foo", "bar"), ("baz", "blah")], true),
        ("foo=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], true),
        ("foo=blah", &[("foo", "bar"), ("baz", "blah")], false),
        (
            "foo=bar,foobar=bar,baz=blah",
            &[("foo", "bar"), ("baz", "blah")],
            false,
        ),
    ];
    for (sel, labels, want) in cases {
        assert_eq!(
            parse(sel).matches(&set(labels)),
            *want,
            "{sel:?} vs {labels:?}"
        );
    }
}

#[test]
fn matches_json_labels() {
    let s = parse("app=web,!canary");
    let obj = json!({"metadata": {"name": "a", "labels": {"app": "web"}}});
    assert!(s.matches_object(&obj));
    assert!(s.matches_labels_json(obj.pointer("/metadata/labels")));
    let canary = json!({"metadata": {"labels": {"app": "web", "canary": "true"}}});
    assert!(!s.matches_object(&canary));
    let none = json!({"metadata": {"name": "a"}});
    assert!(!s.matches_object(&none));
    assert!(parse("!x").matches_object(&none));
    assert!(parse("").matches_labels_json(None));
    assert!(parse("").matches_labels_json(Some(&serde_json::Value::Null)));
    let mut hm = std::collections::HashMap::new();
    hm.insert("app".to_string(), "web".to_string());
    assert!(s.matches(&hm));
}

#[test]
fn everything_nothing_and_empty() {
    let e = LabelSelector::everything();
    assert!(e.is_empty());
    assert!(e.matches(&set(&[("x", "y")])));
    assert!(parse("").is_empty());
    assert!(!parse("x").is_empty());
    let n = LabelSelector::nothing();
    assert!(!n.is_empty());
    assert!(n.is_nothing());
    assert!(!n.matches(&set(&[])));
    assert_eq!(n.to_string(), "");
}

#[test]
fn requirement_constructor() {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: &[(&str, Operator, Vec<String>, bool)] = &[
        ("x", Operator::In, v(&[]), false),
        ("x", Operator::NotIn, v(&[]), false),
        ("x", Operator::In, v(&["foo"]), true),
        ("x", Operator::NotIn, v(&["foo"]), true),
        ("x", Operator::Exists, v(&[]), true),
        ("x", Operator::DoesNotExist, v(&[]), true),
        ("1foo", Operator::In, v(&["bar"]), true),
        ("1234", Operator::In, v(&["bar"]), true),
        ("y", Operator::GreaterThan, v(&["1"]), true),
        ("z", Operator::LessThan, v(&["6"]), true),
        ("foo", Operator::GreaterThan, v(&["bar"]), false),
        ("barz", Operator::LessThan, v(&["blah"]), false),
        (&"a".repeat(254), Operator::Exists, v(&[]), false),
        ("x", Operator::Equals, v(&["a", "b"]), false),
        ("x", Operator::Exists, v(&["a"]), false),
    ];
    for (key, op, vals, ok) in cases {
        assert_eq!(
            Requirement::new(*key, *op, vals.clone()).is_ok(),
            *ok,
            "{key} {op} {vals:?}"
        );
    }
    assert_eq!(
        Requirement::new("x", Operator::Equals, v(&["a", "b"]))
            .map_err(|e| e.to_string()),
        Err("values: Invalid value: [\"a\",\"b\"]: exact-match compatibility requires one single value".to_string())
    );
    assert_eq!(
        Requirement::new("x", Operator::GreaterThan, v(&["1", "b"]))
            .map_err(|e| e.to_string()),
        Err("[values: Invalid value: [\"1\",\"b\"]: for 'Gt', 'Lt' operators, exactly one value is required, values[1]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer]".to_string())
    );
}

#[test]
fn to_string_forms() {
    let r = |k: &str, op, vals: &[&str]| {
        Requirement::new(k, op, vals.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let s = LabelSelector::from_requirements(vec![
        r("x", Operator::In, &["def", "abc"]),
        r("y", Operator::NotIn, &["jkl"]),
        r("z", Operator::Exists, &[]),
    ]);
    assert_eq!(s.to_string(), "x in (abc,def),y notin (jkl),z");
    let s = LabelSelector::from_requirements(vec![
        r("z", Operator::DoesNotExist, &[]),
        r("x", Operator::NotIn, &["abc", "def"]),
        r("y", Operator::NotEquals, &["jkl"]),
    ]);
    assert_eq!(s.to_string(), "x notin (abc,def),y!=jkl,!z");
    let s = LabelSelector::from_requirements(vec![
        r("x", Operator::Equals, &["abc"]),
        r("y", Operator::DoubleEquals, &["jkl"]),
        r("z", Operator::NotEquals, &["a"]),
        r("z", Operator::Exists, &[]),
    ]);
    assert_eq!(s.to_string(), "x=abc,y==jkl,z!=a,z");
    let mut s = LabelSelector::everything();
    s.add(r("y", Operator::LessThan, &["8"]));
    s.add(r("z", Operator::Exists, &[]));
    s.add(r("x", Operator::GreaterThan, &["2"]));
    assert_eq!(s.to_string(), "x>2,y<8,z");
    assert_eq!(r("z", Operator::NotIn, &[""]).to_string(), "z notin ()");
}

#[test]
fn requires_exact_match() {
    assert_eq!(parse("x=a,y=b").requires_exact_match("y"), Some("b"));
    assert_eq!(parse("x==a").requires_exact_match("x"), Some("a"));
    assert_eq!(parse("x in (a)").requires_exact_match("x"), Some("a"));
    assert_eq!(parse("x in (a,b)").requires_exact_match("x"), None);
    assert_eq!(parse("x!=a").requires_exact_match("x"), None);
    assert_eq!(parse("x=a").requires_exact_match("y"), None);
}

#[test]
fn from_set() {
    let s = LabelSelector::from_set(&set(&[("foo", "bar"), ("baz", "blah")]));
    assert_eq!(s.to_string(), "baz=blah,foo=bar");
    assert!(s.matches(&set(&[("foo", "bar"), ("baz", "blah"), ("x", "y")])));
    assert!(!s.matches(&set(&[("foo", "bar")])));
    assert!(LabelSelector::from_set(&BTreeMap::new()).is_empty());
}

#[test]
fn label_selector_conversion() {
    let s = LabelSelector::from_label_selector(&serde_json::Value::Null).expect("null is fine");
    assert!(s.is_nothing());
    assert!(!s.matches(&set(&[])));
    for empty in [
        json!({}),
        json!({"matchLabels": {}}),
        json!({"matchLabels": null, "matchExpressions": []}),
    ] {
        let s = LabelSelector::from_label_selector(&empty).expect("valid");
        assert!(s.is_empty(), "{empty}");
        assert!(s.matches(&set(&[("a", "b")])));
    }
    let s = LabelSelector::from_label_selector(&json!({
        "matchLabels": {"tier": "web", "app": "shop"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["qa", "prod", "qa"]},
            {"key": "track", "operator": "NotIn", "values": ["canary"]},
            {"key": "owner", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist", "values": []},
        ]
    }))
    .expect("valid");
    assert_eq!(
        s.to_string(),
        "app=shop,env in (prod,qa,qa),legacy,owner,tier=web,track notin (canary)"
            .replace("legacy", "!legacy")
    );
    assert!(s.matches(&set(&[
        ("app", "shop"),
        ("tier", "web"),
        ("env", "qa"),
        ("owner", "me"),
    ])));
    assert!(!s.matches(&set(&[
        ("app", "shop"),
        ("tier", "web"),
        ("env", "qa"),
        ("owner", "me"),
        ("legacy", "1"),
    ])));
}

#[test]
fn label_selector_conversion_errors() {
    assert_eq!(
        conv_err(json!({"matchExpressions": [{"key": "x", "operator": "In"}]})),
        "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        conv_err(json!({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": []}]})),
        "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        conv_err(
            json!({"matchExpressions": [{"key": "x", "operator": "Exists", "values": ["a"]}]})
        ),
        "values: Invalid value: [\"a\"]: values set must be empty for exists and does not exist"
    );
    assert_eq!(
        conv_err(json!({"matchExpressions": [{"key": "x", "operator": "Foo"}]})),
        "\"Foo\" is not a valid pod selector operator"
    );
    assert_eq!(
        conv_err(json!({"matchExpressions": [{"key": "x", "operator": "in", "values": ["a"]}]})),
        "\"in\" is not a valid pod selector operator"
    );
    assert_eq!(
        conv_err(json!({"matchLabels": {"a/b/c": "x"}})),
        format!("key: Invalid value: \"a/b/c\": {KEY_MSG}")
    );
    assert_eq!(
        conv_err(json!({"matchLabels": {"app": "a b"}})),
        format!("values[0][app]: Invalid value: \"a b\": {VALUE_MSG}")
    );
    assert_eq!(
        conv_err(
            json!({"matchExpressions": [{"key": "-", "operator": "In", "values": ["ok", "?"]}]})
        ),
        format!(
            "[key: Invalid value: \"-\": {NAME_MSG}, values[1][-]: Invalid value: \"?\": {VALUE_MSG}]"
        )
    );
    assert_eq!(
        conv_err(json!({"matchExpressions": [{"operator": "Exists"}]})),
        format!("key: Invalid value: \"\": name part must be non-empty; {NAME_MSG}")
    );
    assert!(
        conv_err(json!({"matchLabels": {"a": 1}})).starts_with("json: cannot unmarshal number")
    );
    assert!(conv_err(json!("x=y")).starts_with("json: cannot unmarshal string"));
}
