//! A small Go `text/template` subset: enough for KServe's shipped presets.
//!
//! Supported:
//! * text and actions `{{ ... }}`, trim markers `{{- ` and ` -}}`, comments `{{/* ... */}}`;
//! * `{{ if P }}`, `{{ else if P }}`, `{{ else }}`, `{{ end }}` (nested);
//! * operands: field paths on the root (`.Spec.Model.Name`, `.ObjectMeta.Namespace`,
//!   `.GlobalConfig.EnableTLS`, `.`), string literals (`"..."` with Go escapes, `` `raw` ``),
//!   integers, floats, `true`, `false`, `nil`, parenthesised pipelines, and pipes `a | f`;
//! * functions: `and`, `or`, `not`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `len`, `index`,
//!   `print`, `printf` (`%s %d %v %q %%`), `println`, and KServe's `ChildName`,
//!   `kvTransferConfig`, `shutdownTimeout`.
//!
//! Not supported (a load-time error): `with`, `range`, `define`, `template`, `block`, variables
//! (`$x`), method calls, field access on anything but the root.
//!
//! Field paths use Go field names and are checked when the template is compiled against the
//! LLMInferenceService API (both versions; see [`check_field_path`]): an unknown field is a
//! load-time error. At evaluation time a Go name matches a JSON key ASCII-case-insensitively
//! (`DataRPCPort` -> `dataRPCPort`, `KVCacheOffloading` -> `kvCacheOffloading`), with the
//! exceptions `ObjectMeta` -> `metadata`, `TypeMeta` -> the object itself, and the promoted
//! `ObjectMeta` fields (`.Name` is `.ObjectMeta.Name`).
//!
//! Evaluation differs from Go on purpose in one way: an absent value (a missing field, or a field
//! under an absent parent) is `nil` and renders as the empty string, where Go would fail on a nil
//! pointer or print `<no value>`. `{{ or .Spec.Parallelism.Data 1 }}` gives `1`. Objects and lists
//! render as compact JSON.

use std::sync::OnceLock;

use serde_json::{Map, Number, Value};

/// A compiled template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        cond: Pipeline,
        then: Vec<Node>,
        els: Vec<Node>,
    },
}

#[derive(Clone, Debug, PartialEq)]
struct Pipeline {
    cmds: Vec<Command>,
}

#[derive(Clone, Debug, PartialEq)]
struct Command {
    func: Option<Func>,
    args: Vec<Operand>,
}

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Field(Vec<String>),
    Lit(Value),
    Sub(Pipeline),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    And,
    Or,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Len,
    Index,
    Print,
    Printf,
    Println,
    ChildName,
    KvTransferConfig,
    ShutdownTimeout,
}

impl Func {
    fn from_name(s: &str) -> Option<Func> {
        Some(match s {
            "and" => Func::And,
            "or" => Func::Or,
            "not" => Func::Not,
            "eq" => Func::Eq,
            "ne" => Func::Ne,
            "lt" => Func::Lt,
            "le" => Func::Le,
            "gt" => Func::Gt,
            "ge" => Func::Ge,
            "len" => Func::Len,
            "index" => Func::Index,
            "print" => Func::Print,
            "printf" => Func::Printf,
            "println" => Func::Println,
            "ChildName" => Func::ChildName,
            "kvTransferConfig" => Func::KvTransferConfig,
            "shutdownTimeout" => Func::ShutdownTimeout,
            _ => return None,
        })
    }
    /// (min, max) number of arguments.
    fn arity(self) -> (usize, usize) {
        match self {
            Func::And | Func::Or => (1, usize::MAX),
            Func::Not | Func::Len | Func::KvTransferConfig => (1, 1),
            Func::Eq => (2, usize::MAX),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => (2, 2),
            Func::ChildName | Func::ShutdownTimeout => (2, 2),
            Func::Index | Func::Printf => (1, usize::MAX),
            Func::Print | Func::Println => (0, usize::MAX),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Ident(String),
    Lit(Value),
    LParen,
    RParen,
    Pipe,
}

enum Piece {
    Text(String),
    Action(Vec<Tok>),
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Splits the source into text and actions, applying trim markers and dropping comments.
fn split(src: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            let mut t = rest;
            if trim_next {
                t = t.trim_start_matches(is_space);
            }
            if !t.is_empty() {
                pieces.push(Piece::Text(t.to_string()));
            }
            break;
        };
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let mut inner = &rest[start + 2..];
        // Left trim marker: "{{- " (the dash must be followed by a space).
        if inner.starts_with('-') && inner[1..].starts_with(is_space) {
            text = text.trim_end_matches(is_space);
            inner = &inner[1..];
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_string()));
        }
        let (toks, consumed, right_trim) = lex_action(inner)?;
        if let Some(toks) = toks {
            pieces.push(Piece::Action(toks));
        }
        trim_next = right_trim;
        rest = &inner[consumed..];
    }
    Ok(pieces)
}

/// Lexes one action body; returns (tokens or None for a comment, bytes consumed including the
/// closing delimiter, whether a right trim marker was present).
fn lex_action(s: &str) -> Result<(Option<Vec<Tok>>, usize, bool), String> {
    let trimmed = s.trim_start_matches(is_space);
    if trimmed.starts_with("/*") {
        let off = s.len() - trimmed.len();
        let Some(end) = trimmed.find("*/") else {
            return Err("unclosed comment".into());
        };
        let after = &trimmed[end + 2..];
        let after_ws = after.trim_start_matches(is_space);
        let (right, close_len) = if after_ws.starts_with("-}}") && after_ws.len() < after.len() {
            (true, 3)
        } else if after.starts_with("}}") {
            (false, 2)
        } else {
            return Err("comment ends before closing delimiter".into());
        };
        let consumed =
            off + end + 2 + (after.len() - after_ws.len()) * usize::from(right) + close_len;
        return Ok((None, consumed, right));
    }
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let byte = |i: usize| chars.get(i).map(|c| c.0).unwrap_or(s.len());
    loop {
        let Some(c) = at(i) else {
            return Err("unclosed action".into());
        };
        if is_space(c) {
            // " -}}" right trim marker
            let mut j = i;
            while at(j).is_some_and(is_space) {
                j += 1;
            }
            if at(j) == Some('-') && at(j + 1) == Some('}') && at(j + 2) == Some('}') {
                return Ok((Some(toks), byte(j + 3), true));
            }
            i = j;
            continue;
        }
        if c == '}' && at(i + 1) == Some('}') {
            return Ok((Some(toks), byte(i + 2), false));
        }
        match c {
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '.' if !at(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                // field path or "."
                let mut segs = Vec::new();
                while at(i) == Some('.') {
                    i += 1;
                    let st = i;
                    while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        i += 1;
                    }
                    let seg = &s[byte(st)..byte(i)];
                    if seg.is_empty() {
                        if segs.is_empty() && at(i).is_none_or(|c| c != '.') {
                            break; // plain "."
                        }
                        return Err("bad field path".into());
                    }
                    segs.push(seg.to_string());
                }
                toks.push(Tok::Field(segs));
            }
            '"' => {
                i += 1;
                let mut out = String::new();
                loop {
                    match at(i) {
                        None | Some('\n') => return Err("unterminated quoted string".into()),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let e = at(i + 1).ok_or("unterminated quoted string")?;
                            out.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                other => return Err(format!("unsupported escape \\{other}")),
                            });
                            i += 2;
                        }
                        Some(c) => {
                            out.push(c);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Lit(Value::String(out)));
            }
            '`' => {
                let st = i + 1;
                i += 1;
                while at(i).is_some_and(|c| c != '`') {
                    i += 1;
                }
                if at(i).is_none() {
                    return Err("unterminated raw quoted string".into());
                }
                toks.push(Tok::Lit(Value::String(s[byte(st)..byte(i)].to_string())));
                i += 1;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let st = i;
                i += 1;
                while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') {
                    i += 1;
                }
                let text = &s[byte(st)..byte(i)];
                let v = if let Ok(n) = text.parse::<i64>() {
                    Value::Number(n.into())
                } else if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
                    Value::Number(n)
                } else {
                    return Err(format!("bad number syntax: {text:?}"));
                };
                toks.push(Tok::Lit(v));
            }
            c if c.is_alphabetic() || c == '_' => {
                let st = i;
                while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    i += 1;
                }
                let word = &s[byte(st)..byte(i)];
                toks.push(match word {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "nil" => Tok::Lit(Value::Null),
                    w => Tok::Ident(w.to_string()),
                });
            }
            '$' => return Err("template variables ($x) are not supported".into()),
            other => return Err(format!("unexpected {other:?} in action")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

enum Item {
    Node(Node),
    Else(Option<Pipeline>),
    End,
}

/// Compiles `src`. Field paths are checked with [`check_field_path`].
pub fn compile(src: &str) -> Result<Template, String> {
    let pieces = split(src)?;
    let mut items = Vec::with_capacity(pieces.len());
    for p in pieces {
        items.push(match p {
            Piece::Text(t) => Item::Node(Node::Text(t)),
            Piece::Action(toks) => parse_action(toks)?,
        });
    }
    let mut it = items.into_iter().peekable();
    let (nodes, term) = parse_list(&mut it)?;
    match term {
        None => Ok(Template { nodes }),
        Some(Term::End) => Err("unexpected {{end}}".into()),
        Some(Term::Else(_)) => Err("unexpected {{else}}".into()),
    }
}

enum Term {
    End,
    Else(Option<Pipeline>),
}

fn parse_list(
    it: &mut std::iter::Peekable<std::vec::IntoIter<Item>>,
) -> Result<(Vec<Node>, Option<Term>), String> {
    let mut nodes = Vec::new();
    while let Some(item) = it.next() {
        match item {
            Item::Node(Node::If { cond, .. }) => nodes.push(parse_if(cond, it)?),
            Item::Node(n) => nodes.push(n),
            Item::Else(p) => return Ok((nodes, Some(Term::Else(p)))),
            Item::End => return Ok((nodes, Some(Term::End))),
        }
    }
    Ok((nodes, None))
}

fn parse_if(
    cond: Pipeline,
    it: &mut std::iter::Peekable<std::vec::IntoIter<Item>>,
) -> Result<Node, String> {
    let (then, term) = parse_list(it)?;
    let els = match term {
        None => return Err("unexpected EOF: missing {{end}}".into()),
        Some(Term::End) => Vec::new(),
        Some(Term::Else(None)) => {
            let (els, term) = parse_list(it)?;
            match term {
                Some(Term::End) => els,
                None => return Err("unexpected EOF: missing {{end}}".into()),
                Some(Term::Else(_)) => return Err("unexpected {{else}} after {{else}}".into()),
            }
        }
        // `else if`: the nested if shares the outer {{end}}.
        Some(Term::Else(Some(c))) => vec![parse_if(c, it)?],
    };
    Ok(Node::If { cond, then, els })
}

fn parse_action(toks: Vec<Tok>) -> Result<Item, String> {
    match toks.first() {
        None => Err("missing value for command".into()),
        Some(Tok::Ident(w)) if w == "if" => Ok(Item::Node(Node::If {
            cond: parse_pipeline(&toks[1..])?,
            then: vec![],
            els: vec![],
        })),
        Some(Tok::Ident(w)) if w == "else" => {
            if toks.len() == 1 {
                Ok(Item::Else(None))
            } else if toks.get(1) == Some(&Tok::Ident("if".into())) {
                Ok(Item::Else(Some(parse_pipeline(&toks[2..])?)))
            } else {
                Err("only {{else}} and {{else if}} are supported".into())
            }
        }
        Some(Tok::Ident(w)) if w == "end" => {
            if toks.len() == 1 {
                Ok(Item::End)
            } else {
                Err("unexpected arguments to {{end}}".into())
            }
        }
        Some(Tok::Ident(w))
            if matches!(
                w.as_str(),
                "with" | "range" | "define" | "template" | "block" | "break" | "continue"
            ) =>
        {
            Err(format!("{{{{{w}}}}} is not supported"))
        }
        _ => Ok(Item::Node(Node::Action(parse_pipeline(&toks)?))),
    }
}

fn parse_pipeline(toks: &[Tok]) -> Result<Pipeline, String> {
    if toks.is_empty() {
        return Err("missing value for command".into());
    }
    let mut cmds = Vec::new();
    let mut cur: Vec<Tok> = Vec::new();
    let mut depth = 0i32;
    for t in toks {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth -= 1;
                if depth < 0 {
                    return Err("unexpected )".into());
                }
            }
            Tok::Pipe if depth == 0 => {
                cmds.push(parse_command(&cur, !cmds.is_empty())?);
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(t.clone());
    }
    if depth != 0 {
        return Err("unclosed left paren".into());
    }
    cmds.push(parse_command(&cur, !cmds.is_empty())?);
    Ok(Pipeline { cmds })
}

fn parse_command(toks: &[Tok], piped: bool) -> Result<Command, String> {
    if toks.is_empty() {
        return Err("missing command".into());
    }
    let mut ops = Vec::new();
    let mut func = None;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(name) => {
                if i != 0 {
                    // A function used as an argument without parentheses: Go calls it with no
                    // arguments. Only allowed for the variadic print functions; reject otherwise.
                    return Err(format!(
                        "function {name:?} used as an argument; use parentheses"
                    ));
                }
                func = Some(Func::from_name(name).ok_or(format!("function {name:?} not defined"))?);
                i += 1;
            }
            Tok::Field(p) => {
                check_field_path(p)?;
                ops.push(Operand::Field(p.clone()));
                i += 1;
            }
            Tok::Lit(v) => {
                ops.push(Operand::Lit(v.clone()));
                i += 1;
            }
            Tok::LParen => {
                let mut depth = 0;
                let st = i + 1;
                loop {
                    match toks.get(i) {
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        None => return Err("unclosed left paren".into()),
                        _ => {}
                    }
                    i += 1;
                }
                ops.push(Operand::Sub(parse_pipeline(&toks[st..i])?));
                i += 1;
                if matches!(toks.get(i), Some(Tok::Field(_))) {
                    return Err("field access on a parenthesised value is not supported".into());
                }
            }
            Tok::RParen => return Err("unexpected )".into()),
            Tok::Pipe => return Err("unexpected |".into()),
        }
    }
    match func {
        Some(f) => {
            let n = ops.len() + usize::from(piped);
            let (lo, hi) = f.arity();
            if n < lo || n > hi {
                return Err(format!("wrong number of args for {f:?}: got {n}"));
            }
        }
        None => {
            if ops.len() != 1 {
                return Err(
                    "can't give argument to non-function (method calls are not supported)".into(),
                );
            }
            if piped {
                return Err("can't give argument to non-function".into());
            }
        }
    }
    Ok(Command { func, args: ops })
}

// ---------------------------------------------------------------------------------------------
// Field path checking

struct Schemas {
    specs: Vec<Value>,
    statuses: Vec<Value>,
    meta: Value,
    pod: Value,
}

fn schemas() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(|| {
        use crate::api::schema::structural_schema_for;
        use crate::api::{v1alpha1, v1alpha2};
        Schemas {
            specs: vec![
                structural_schema_for::<v1alpha2::LLMInferenceServiceSpec>(),
                structural_schema_for::<v1alpha1::LLMInferenceServiceSpec>(),
            ],
            statuses: vec![
                structural_schema_for::<v1alpha2::LLMInferenceServiceStatus>(),
                structural_schema_for::<v1alpha1::LLMInferenceServiceStatus>(),
            ],
            meta: structural_schema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(),
            pod: structural_schema_for::<k8s_openapi::api::core::v1::PodSpec>(),
        }
    })
}

/// The fields of `.GlobalConfig` (KServe's `templateGlobalConfig`).
pub const GLOBAL_CONFIG_FIELDS: [&str; 6] = [
    "SystemNamespace",
    "IngressGatewayName",
    "IngressGatewayNamespace",
    "EnableTLS",
    "ModelBasedRoutingHeaderName",
    "InferencePoolNamespacedName",
];

const PROMOTED_META: [&str; 12] = [
    "Name",
    "Namespace",
    "Labels",
    "Annotations",
    "UID",
    "ResourceVersion",
    "Generation",
    "GenerateName",
    "CreationTimestamp",
    "DeletionTimestamp",
    "OwnerReferences",
    "Finalizers",
];

/// Checks a field path (Go names, without the leading dot) against the LLMInferenceService API.
pub fn check_field_path(path: &[String]) -> Result<(), String> {
    let Some(first) = path.first() else {
        return Ok(()); // "."
    };
    let rest = &path[1..];
    let s = schemas();
    let shown = format!(".{}", path.join("."));
    let ok = match first.as_str() {
        "Spec" => s.specs.iter().any(|sch| walk(sch, rest, s)),
        "Status" => s.statuses.iter().any(|sch| walk(sch, rest, s)),
        "ObjectMeta" => walk(&s.meta, rest, s),
        "TypeMeta" => {
            matches!(rest, [])
                || (rest.len() == 1 && (rest[0] == "APIVersion" || rest[0] == "Kind"))
        }
        "APIVersion" | "Kind" => rest.is_empty(),
        "GlobalConfig" => match rest {
            [] => true,
            [f] => GLOBAL_CONFIG_FIELDS.contains(&f.as_str()),
            _ => false,
        },
        f if PROMOTED_META.contains(&f) => walk(&s.meta, path, s),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "can't evaluate field path {shown}: no such field in LLMInferenceService"
        ))
    }
}

/// Whether evaluating `path` can read the object's `spec` (conservative: `true` when unsure).
/// Presets whose templates never read it are rendered without merging the spec first.
pub fn reads_spec(path: &[String]) -> bool {
    fn at_root(path: &[String]) -> bool {
        // `WorkloadSpec` segments are transparent in `lookup`.
        match path.iter().find(|s| s.as_str() != "WorkloadSpec") {
            None => true,
            Some(f) => f.eq_ignore_ascii_case("spec"),
        }
    }
    match path.split_first() {
        None => true,
        Some((f, _)) if f == "ObjectMeta" || f == "GlobalConfig" => false,
        Some((f, _)) if PROMOTED_META.contains(&f.as_str()) => false,
        Some((f, rest)) if f == "TypeMeta" => at_root(rest),
        Some(_) => at_root(path),
    }
}

/// The embedded PodSpecs (`template`, `worker`) are opaque objects in our CRD schema; below them
/// the walk continues in k8s-openapi's PodSpec schema.
fn is_podspec(key: &str, schema: &Value) -> bool {
    matches!(key, "template" | "worker")
        && schema.get("properties").is_none()
        && schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

/// The fields of Go's `net/url.URL`, which KServe's `apis.URL` fields (`model.uri`, a LoRA
/// adapter's `uri`) are: `{{ .Spec.Model.URI.Host }}{{ .Spec.Model.URI.Path }}` as in KServe's
/// config_merge_test.go. See [`url_field`].
pub const URL_FIELDS: [&str; 11] = [
    "Scheme",
    "Opaque",
    "User",
    "Host",
    "Path",
    "RawPath",
    "OmitHost",
    "ForceQuery",
    "RawQuery",
    "Fragment",
    "RawFragment",
];

/// Whether schema property `key` is one of KServe's `apis.URL` fields (a string named `uri`).
fn is_url(key: &str, schema: &Value) -> bool {
    key == "uri" && schema.get("type").and_then(Value::as_str) == Some("string")
}

/// Go's `url.PathUnescape`, leniently: an invalid escape is kept as written.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (
                (b[i + 1] as char).to_digit(16),
                (b[i + 2] as char).to_digit(16),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Field `field` ([`URL_FIELDS`]) of `uri` as Go's `url.Parse` gives it: `hf://org/model` has
/// `Scheme` `hf` (lower-cased), `Host` `org`, `Path` `/model`; `User` is the `user[:password]`
/// before `@` in the authority (nil when absent), `RawQuery` what follows `?`, `Fragment` what
/// follows `#` (unescaped), `Opaque` the rest of a URI whose scheme is not followed by `/`;
/// `ForceQuery` is whether the URI ends in an empty `?`. `RawPath` / `RawFragment` are always
/// empty and `OmitHost` false (Go sets them only for unusual escapings and `scheme:///`).
pub fn url_field(uri: &str, field: &str) -> Value {
    let (mut rest, fragment) = match uri.split_once('#') {
        Some((r, f)) => (r, f),
        None => (uri, ""),
    };
    let mut scheme = String::new();
    if let Some(i) = rest.find(':')
        && i > 0
        && rest.as_bytes()[0].is_ascii_alphabetic()
        && rest[..i]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
    {
        scheme = rest[..i].to_ascii_lowercase();
        rest = &rest[i + 1..];
    }
    let (mut rest, query, force_query) = match rest.split_once('?') {
        Some((r, q)) => (r, q, q.is_empty()),
        None => (rest, "", false),
    };
    let (mut opaque, mut user, mut host) = ("", Value::Null, "");
    if !scheme.is_empty() && !rest.starts_with('/') {
        opaque = rest;
        rest = "";
    } else if let Some(after) = rest.strip_prefix("//") {
        let (authority, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        host = authority;
        if let Some(i) = authority.rfind('@') {
            user = Value::String(unescape(&authority[..i]));
            host = &authority[i + 1..];
        }
        rest = path;
    }
    match field {
        "Scheme" => scheme.into(),
        "Opaque" => opaque.into(),
        "User" => user,
        "Host" => host.into(),
        "Path" => unescape(rest).into(),
        "RawQuery" => query.into(),
        "Fragment" => unescape(fragment).into(),
        "ForceQuery" => force_query.into(),
        "OmitHost" => false.into(),
        "RawPath" | "RawFragment" => "".into(),
        _ => Value::Null,
    }
}

fn walk(schema: &Value, path: &[String], s: &Schemas) -> bool {
    let Some((seg, rest)) = path.split_first() else {
        return true;
    };
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        if let Some((k, sub)) = props.iter().find(|(k, _)| k.eq_ignore_ascii_case(seg)) {
            if is_podspec(k, sub) {
                return walk(&s.pod, rest, s);
            }
            if is_url(k, sub) {
                return match rest {
                    [] => true,
                    [f] => URL_FIELDS.contains(&f.as_str()),
                    _ => false,
                };
            }
            return walk(sub, rest, s);
        }
        // Go's embedded structs (`WorkloadSpec`) are transparent.
        if seg == "WorkloadSpec" {
            return walk(schema, rest, s);
        }
        return false;
    }
    if let Some(ap) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        // a map: `.Labels.key`
        return walk(ap, rest, s);
    }
    // An opaque object (HTTPRoute spec, scheduler config): anything below is accepted.
    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Looks up a Go field path in the evaluation context: the object being admitted (JSON) plus a
/// `GlobalConfig` member.
fn lookup(root: &Value, path: &[String]) -> Value {
    let Some((first, rest)) = path.split_first() else {
        return root.clone();
    };
    let (start, rest): (Option<&Value>, &[String]) = match first.as_str() {
        "ObjectMeta" => (root.get("metadata"), rest),
        "TypeMeta" => (Some(root), rest),
        "GlobalConfig" => (root.get("GlobalConfig"), rest),
        f if PROMOTED_META.contains(&f) => (root.get("metadata"), path),
        _ => (Some(root), path),
    };
    let mut cur = match start {
        Some(v) => v,
        None => return Value::Null,
    };
    for (i, seg) in rest.iter().enumerate() {
        let Value::Object(m) = cur else {
            // A field of a URI (`.Spec.Model.URI.Host`): Go's `url.URL`.
            if let Value::String(u) = cur
                && i + 1 == rest.len()
                && i > 0
                && rest[i - 1].eq_ignore_ascii_case("uri")
            {
                return url_field(u, seg);
            }
            return Value::Null;
        };
        let found = m.get(seg.as_str()).or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                .map(|(_, v)| v)
        });
        match found {
            Some(v) => cur = v,
            None if seg == "WorkloadSpec" => {}
            None => return Value::Null,
        }
    }
    cur.clone()
}

/// Go's truth: false, 0, nil, "" and empty collections are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// How a value prints: strings as-is, `nil` as "", objects and lists as compact JSON.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

impl Template {
    /// Renders the template against `root` (the object, with a `GlobalConfig` member).
    pub fn render(&self, root: &Value) -> Result<String, String> {
        let mut out = String::new();
        render_nodes(&self.nodes, root, &mut out)?;
        Ok(out)
    }

    /// Every field path the template reads (`.Spec.Model.Name` is `["Spec", "Model", "Name"]`,
    /// `.` is `[]`), so what a template can see is known at load time.
    pub fn field_paths(&self) -> Vec<&[String]> {
        fn nodes<'a>(ns: &'a [Node], out: &mut Vec<&'a [String]>) {
            for n in ns {
                match n {
                    Node::Text(_) => {}
                    Node::Action(p) => pipeline(p, out),
                    Node::If { cond, then, els } => {
                        pipeline(cond, out);
                        nodes(then, out);
                        nodes(els, out);
                    }
                }
            }
        }
        fn pipeline<'a>(p: &'a Pipeline, out: &mut Vec<&'a [String]>) {
            for c in &p.cmds {
                for a in &c.args {
                    match a {
                        Operand::Field(f) => out.push(f),
                        Operand::Lit(_) => {}
                        Operand::Sub(p) => pipeline(p, out),
                    }
                }
            }
        }
        let mut out = Vec::new();
        nodes(&self.nodes, &mut out);
        out
    }

    /// Whether the template is plain text (no actions).
    pub fn is_static(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }
}

fn render_nodes(nodes: &[Node], root: &Value, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&to_text(&eval_pipeline(p, root)?)),
            Node::If { cond, then, els } => {
                if truthy(&eval_pipeline(cond, root)?) {
                    render_nodes(then, root, out)?;
                } else {
                    render_nodes(els, root, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_pipeline(p: &Pipeline, root: &Value) -> Result<Value, String> {
    let mut prev: Option<Value> = None;
    for c in &p.cmds {
        prev = Some(eval_command(c, root, prev)?);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn eval_operand(o: &Operand, root: &Value) -> Result<Value, String> {
    match o {
        Operand::Field(p) => Ok(lookup(root, p)),
        Operand::Lit(v) => Ok(v.clone()),
        Operand::Sub(p) => eval_pipeline(p, root),
    }
}

fn eval_command(c: &Command, root: &Value, piped: Option<Value>) -> Result<Value, String> {
    let Some(f) = c.func else {
        return eval_operand(&c.args[0], root);
    };
    // and/or short-circuit (Go >= 1.18) and return the deciding value.
    if matches!(f, Func::And | Func::Or) {
        let n = c.args.len() + usize::from(piped.is_some());
        let mut last = Value::Null;
        for i in 0..n {
            let v = match c.args.get(i) {
                Some(a) => eval_operand(a, root)?,
                None => piped.clone().unwrap_or(Value::Null),
            };
            let t = truthy(&v);
            last = v;
            if (f == Func::And && !t) || (f == Func::Or && t) {
                return Ok(last);
            }
        }
        return Ok(last);
    }
    let mut args = c
        .args
        .iter()
        .map(|a| eval_operand(a, root))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(p) = piped {
        args.push(p);
    }
    call(f, &args)
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => num(a)
            .zip(num(b))
            .and_then(|(x, y)| x.partial_cmp(&y))
            .ok_or_else(|| "incomparable numbers".to_string()),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err(format!("incompatible types for comparison: {a} and {b}")),
    }
}

fn call(f: Func, args: &[Value]) -> Result<Value, String> {
    use std::cmp::Ordering::*;
    Ok(match f {
        Func::And | Func::Or => unreachable!("handled in eval_command"),
        Func::Not => Value::Bool(!truthy(&args[0])),
        Func::Eq => Value::Bool(args[1..].iter().any(|b| equal(&args[0], b))),
        Func::Ne => Value::Bool(!equal(&args[0], &args[1])),
        Func::Lt => Value::Bool(compare(&args[0], &args[1])? == Less),
        Func::Le => Value::Bool(compare(&args[0], &args[1])? != Greater),
        Func::Gt => Value::Bool(compare(&args[0], &args[1])? == Greater),
        Func::Ge => Value::Bool(compare(&args[0], &args[1])? != Less),
        Func::Len => Value::Number(
            match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::Null => 0,
                other => return Err(format!("len of {other}")),
            }
            .into(),
        ),
        Func::Index => {
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (&cur, k) {
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| a.get(i as usize))
                        .cloned()
                        .ok_or_else(|| format!("index {n} out of range"))?,
                    (Value::Object(m), Value::String(s)) => {
                        m.get(s).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Null, _) => Value::Null,
                    _ => return Err(format!("can't index {cur} with {k}")),
                };
            }
            cur
        }
        Func::Print => Value::String(go_print(args)),
        Func::Println => {
            let s: Vec<String> = args.iter().map(to_text).collect();
            Value::String(s.join(" ") + "\n")
        }
        Func::Printf => Value::String(printf(&to_text(&args[0]), &args[1..])?),
        Func::ChildName => Value::String(child_name(&to_text(&args[0]), &to_text(&args[1]))),
        Func::ShutdownTimeout => {
            let tgps = args[0]
                .get("terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(60);
            let pre_stop = args[1]
                .as_i64()
                .ok_or("shutdownTimeout: preStop must be an integer")?;
            let buf = tgps.min(5);
            Value::Number((tgps - pre_stop - buf).max(0).into())
        }
        Func::KvTransferConfig => Value::String(kv_transfer_config(&args[0])?),
    })
}

/// Go's `print`: spaces between operands when neither side is a string.
fn go_print(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&to_text(a));
    }
    out
}

fn printf(fmt: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut it = fmt.chars();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = it.next().ok_or("printf: trailing %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.get(ai) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        ai += 1;
        match verb {
            's' | 'v' | 'd' => out.push_str(&to_text(a)),
            'q' => out.push_str(&Value::String(to_text(a)).to_string()),
            other => return Err(format!("printf: unsupported verb %{other}")),
        }
    }
    Ok(out)
}

/// knative's `kmeta.ChildName` (the one implementation: [`crate::model::children::child_name`]).
pub fn child_name(parent: &str, suffix: &str) -> String {
    crate::model::children::child_name(parent, suffix)
}

/// Parses a Kubernetes quantity and returns its value rounded up to an integer (Go's
/// `Quantity.Value()`; [`crate::model::json::Quantity`]).
pub fn quantity_value(q: &str) -> Option<i64> {
    crate::model::json::Quantity::parse(q).map(|q| q.ceil())
}

/// KServe's `kvTransferConfig`: the vLLM `--kv-transfer-config` flag for the OffloadingConnector,
/// its JSON with `"` escaped as `\"` (it is embedded in a double-quoted bash string).
fn kv_transfer_config(spec: &Value) -> Result<String, String> {
    let Some(cfg) = offloading_connector_config(spec)? else {
        return Ok(String::new());
    };
    Ok(format!(
        "--kv-transfer-config '{}'",
        cfg.to_string().replace('"', "\\\"")
    ))
}

/// The vLLM KV transfer configuration KServe generates for `kvCacheOffloading` (its template
/// function `kvTransferConfig`, config_merge.go): the `OffloadingConnector` with
/// `kv_role: kv_both` and `kv_connector_extra_config` `{cpu_bytes_to_use, eviction_policy?,
/// secondary_tiers?, spec_name: TieringOffloadingSpec}`, keys sorted as Go's `json.Marshal`
/// writes a map. `None` when `spec` is not an object (absent, null); an error for a `cpu` that
/// is not a quantity.
pub fn offloading_connector_config(spec: &Value) -> Result<Option<Value>, String> {
    let Value::Object(kv) = spec else {
        return Ok(None);
    };
    let cpu = match kv.get("cpu") {
        Some(Value::String(s)) => quantity_value(s).ok_or(format!("bad quantity {s:?}"))?,
        Some(Value::Number(n)) => n.as_f64().map(|f| f.ceil() as i64).unwrap_or(0),
        _ => 0,
    };
    // Keys in the order Go's json.Marshal gives a map: sorted.
    let mut extra = Map::new();
    extra.insert("cpu_bytes_to_use".into(), cpu.into());
    if let Some(p) = kv
        .get("evictionPolicy")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        extra.insert("eviction_policy".into(), p.into());
    }
    let tiers: Vec<Value> = kv
        .get("secondary")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .enumerate()
                .filter(|(_, s)| s.get("fileSystem").is_some_and(|f| !f.is_null()))
                .map(|(i, _)| {
                    let mut m = Map::new();
                    m.insert("root_dir".into(), format!("/mnt/kv-cache-{i}").into());
                    m.insert("type".into(), "fs".into());
                    Value::Object(m)
                })
                .collect()
        })
        .unwrap_or_default();
    if !tiers.is_empty() {
        extra.insert("secondary_tiers".into(), Value::Array(tiers));
    }
    extra.insert("spec_name".into(), "TieringOffloadingSpec".into());
    let mut cfg = Map::new();
    cfg.insert("kv_connector".into(), "OffloadingConnector".into());
    cfg.insert("kv_connector_extra_config".into(), Value::Object(extra));
    cfg.insert("kv_role".into(), "kv_both".into());
    Ok(Some(Value::Object(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "apiVersion": "serving.kserve.io/v1alpha2",
            "kind": "LLMInferenceService",
            "metadata": {"name": "llama", "namespace": "team-a", "labels": {"app": "x"}},
            "spec": {
                "model": {"uri": "hf://m", "name": "meta/llama"},
                "parallelism": {"tensor": 4, "dataRPCPort": 6000, "expert": true},
                "prefill": {"parallelism": {"data": 2}},
                "template": {"terminationGracePeriodSeconds": 30},
                "kvCacheOffloading": {"cpu": "1Ki"},
            },
            "GlobalConfig": {"EnableTLS": false, "ModelBasedRoutingHeaderName": "X-Gateway-Model-Name"},
        })
    }

    fn render(src: &str) -> Result<String, String> {
        compile(src)?.render(&ctx())
    }

    #[test]
    fn render_table() {
        let cases: &[(&str, &str)] = &[
            ("plain text", "plain text"),
            ("", ""),
            ("{{ .Spec.Model.Name }}", "meta/llama"),
            (
                "{{.ObjectMeta.Name}}/{{ .ObjectMeta.Namespace }}",
                "llama/team-a",
            ),
            ("{{ .Name }}", "llama"),
            ("{{ .ObjectMeta.Labels.app }}", "x"),
            ("{{ or .Spec.Parallelism.Data 1 }}", "1"),
            ("{{ or .Spec.Prefill.Parallelism.Data 1 }}", "2"),
            ("{{ .Spec.Parallelism.Tensor }}", "4"),
            ("{{ .Spec.Parallelism.DataRPCPort }}", "6000"),
            ("[{{ .Spec.Parallelism.Pipeline }}]", "[]"),
            ("[{{ .Spec.Router.Scheduler.Replicas }}]", "[]"),
            (
                "{{ if .Spec.Parallelism.Expert }}ep{{ else }}no{{ end }}",
                "ep",
            ),
            (
                "{{ if .Spec.Parallelism.Pipeline }}pp{{ else }}no{{ end }}",
                "no",
            ),
            (
                "{{ if .GlobalConfig.EnableTLS }}HTTPS{{else}}HTTP{{- end }}",
                "HTTP",
            ),
            (
                "a  {{- if .Spec.Parallelism.Tensor }} -t {{ .Spec.Parallelism.Tensor }}{{- end }} b",
                "a -t 4 b",
            ),
            ("a \n {{- \"x\" -}} \n b", "axb"),
            ("{{- if .Spec.Parallelism.Tensor -}}\n  T\n{{- end }}", "T"),
            (
                "{{ if .Spec.Prefill }}{{ if .Spec.Prefill.Parallelism.Tensor }}t{{ else if .Spec.Prefill.Parallelism.Data }}d{{ else }}n{{ end }}{{ end }}",
                "d",
            ),
            (
                "{{ if and .Spec.Parallelism .Spec.Parallelism.Tensor }}yes{{ end }}",
                "yes",
            ),
            (
                "{{ if and .Spec.Worker .Spec.Worker.Containers }}yes{{ end }}",
                "",
            ),
            ("{{ if not .Spec.Worker }}none{{ end }}", "none"),
            (
                "{{ if eq .Spec.Parallelism.Tensor 4 }}four{{ end }}",
                "four",
            ),
            (
                "{{ if ne .ObjectMeta.Name \"llama\" }}x{{ else }}same{{ end }}",
                "same",
            ),
            ("{{ if gt .Spec.Parallelism.Tensor 2 }}big{{ end }}", "big"),
            ("{{ printf \"%s-%d\" .ObjectMeta.Name 3 }}", "llama-3"),
            ("{{ .ObjectMeta.Name | printf \"%s!\" }}", "llama!"),
            (
                "{{ ChildName .ObjectMeta.Name `-inference-pool` }}",
                "llama-inference-pool",
            ),
            ("{{ shutdownTimeout .Spec.Template 15 }}", "10"),
            ("{{ shutdownTimeout nil 15 }}", "40"),
            ("{{/* a comment */}}x", "x"),
            ("x {{- /* c */ -}} y", "xy"),
            ("{{ len .Spec.Model.Name }}", "10"),
            ("{{ index .ObjectMeta.Labels \"app\" }}", "x"),
            ("{{ (or .Spec.Parallelism.Data 7) }}", "7"),
            (
                "{{ .GlobalConfig.ModelBasedRoutingHeaderName }}",
                "X-Gateway-Model-Name",
            ),
            ("{{ .Spec.WorkloadSpec.Parallelism.Tensor }}", "4"),
            (
                "{{ kvTransferConfig .Spec.KVCacheOffloading }}",
                r#"--kv-transfer-config '{\"kv_connector\":\"OffloadingConnector\",\"kv_connector_extra_config\":{\"cpu_bytes_to_use\":1024,\"spec_name\":\"TieringOffloadingSpec\"},\"kv_role\":\"kv_both\"}'"#,
            ),
            ("{{ kvTransferConfig .Spec.Prefill.KVCacheOffloading }}", ""),
        ];
        for (src, want) in cases {
            assert_eq!(render(src).as_deref(), Ok(*want), "template {src:?}");
        }
    }

    #[test]
    fn compile_errors() {
        let cases: &[(&str, &str)] = &[
            ("{{ .Spec.Modle.Name }}", "no such field"),
            ("{{ .Spec.Model.Name.Foo }}", "no such field"),
            ("{{ .Foo }}", "no such field"),
            ("{{ .GlobalConfig.Nope }}", "no such field"),
            ("{{ frobnicate .Spec.Model.Name }}", "not defined"),
            ("{{ .Spec.Model.Name ", "unclosed action"),
            ("{{ if .Spec.Worker }}x", "missing {{end}}"),
            ("x{{ end }}", "unexpected {{end}}"),
            ("{{ else }}", "unexpected {{else}}"),
            ("{{ range .Spec.BaseRefs }}{{ end }}", "not supported"),
            ("{{ $x := 1 }}", "not supported"),
            ("{{ \"abc }}", "unterminated"),
            ("{{ not }}", "wrong number of args"),
            ("{{ ChildName .ObjectMeta.Name }}", "wrong number of args"),
            ("{{ }}", "missing value"),
            ("{{ (or 1 2 }}", "paren"),
        ];
        for (src, want) in cases {
            let err = compile(src).expect_err(src);
            assert!(
                err.contains(want),
                "template {src:?}: error {err:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn podspec_fields_are_checked() {
        assert!(compile("{{ .Spec.Template.TerminationGracePeriodSeconds }}").is_ok());
        assert!(compile("{{ .Spec.Prefill.Template.NoSuchField }}").is_err());
        assert!(compile("{{ .Spec.Router.Route.HTTP.Spec.Anything }}").is_ok());
    }

    #[test]
    fn child_name_hashes_long_names() {
        let long = "a".repeat(60);
        let n = child_name(&long, "-inference-pool");
        assert!(n.len() <= 63, "{n}");
        assert!(n.ends_with("-inference-pool"));
        assert_eq!(child_name("x", "-y"), "x-y");
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_value("10Gi"), Some(10 * 1024 * 1024 * 1024));
        assert_eq!(quantity_value("1.5k"), Some(1500));
        assert_eq!(quantity_value("100m"), Some(1));
        assert_eq!(quantity_value("1e3"), Some(1000));
        assert_eq!(quantity_value("x"), None);
    }
}
