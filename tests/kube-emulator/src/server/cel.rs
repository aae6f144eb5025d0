//! A small subset of CEL for CRD `x-kubernetes-validations` rules.
//!
//! Supported: `self` and `oldSelf`, field access (`self.a.b`), indexing (`self.a[0]`,
//! `self.m['k']`), `has(self.a.b)`, `size(x)` and `x.size()`, string methods
//! `startsWith`/`endsWith`/`contains`/`matches`, literals (strings, integers, floats, bools,
//! null, lists), `!`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `&&`, `||` (with CEL's
//! commutative error handling), `+`/`-` on numbers and `+` on strings, the ternary `?:`, and
//! `all`/`exists` macros over lists. Anything else fails to parse and the rule is skipped
//! (the emulator does not enforce it), which keeps unknown CEL from rejecting valid objects.

use serde_json::Value;

/// Why a rule could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CelError {
    /// The rule uses syntax outside the supported subset.
    #[error("unsupported CEL: {0}")]
    Unsupported(String),
    /// Evaluation failed (missing key, wrong types): the real server reports these as invalid.
    #[error("{0}")]
    Eval(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Op(&'static str),
}

fn tokenize(src: &str) -> Result<Vec<Token>, CelError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    const OPS: &[&str] = &[
        "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", "[", "]", ".", ",", "+", "-",
        "?", ":",
    ];
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let quote = c;
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    s.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    s.push(chars[i]);
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(CelError::Unsupported("unterminated string".into()));
            }
            i += 1;
            out.push(Token::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            if i < chars.len() && chars[i] == 'u' {
                i += 1;
            }
            if text.contains('.') {
                out.push(Token::Float(
                    text.parse()
                        .map_err(|_| CelError::Unsupported(text.clone()))?,
                ));
            } else {
                out.push(Token::Int(
                    text.parse()
                        .map_err(|_| CelError::Unsupported(text.clone()))?,
                ));
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPS
                .iter()
                .find(|op| rest.starts_with(**op))
                .ok_or_else(|| CelError::Unsupported(format!("character {c:?}")))?;
            i += op.len();
            out.push(Token::Op(op));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Var(String),
    Lit(Value),
    List(Vec<Expr>),
    Field(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Has(Box<Expr>),
    Call(String, Option<Box<Expr>>, Vec<Expr>),
    Macro(String, Box<Expr>, String, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Token::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), CelError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(CelError::Unsupported(format!("expected {op}")))
        }
    }

    fn expr(&mut self) -> Result<Expr, CelError> {
        let cond = self.or()?;
        if self.eat_op("?") {
            let then = self.expr()?;
            self.expect_op(":")?;
            let otherwise = self.expr()?;
            return Ok(Expr::Cond(
                Box::new(cond),
                Box::new(then),
                Box::new(otherwise),
            ));
        }
        Ok(cond)
    }

    fn or(&mut self) -> Result<Expr, CelError> {
        let mut left = self.and()?;
        while self.eat_op("||") {
            left = Expr::Binary("||", Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, CelError> {
        let mut left = self.comparison()?;
        while self.eat_op("&&") {
            left = Expr::Binary("&&", Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, CelError> {
        let left = self.additive()?;
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.eat_op(op) {
                let right = self.additive()?;
                let op: &'static str = match op {
                    "==" => "==",
                    "!=" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    "<" => "<",
                    _ => ">",
                };
                return Ok(Expr::Binary(op, Box::new(left), Box::new(right)));
            }
        }
        if matches!(self.peek(), Some(Token::Ident(id)) if id == "in") {
            self.pos += 1;
            let right = self.additive()?;
            return Ok(Expr::Binary("in", Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, CelError> {
        let mut left = self.unary()?;
        loop {
            if self.eat_op("+") {
                left = Expr::Binary("+", Box::new(left), Box::new(self.unary()?));
            } else if self.eat_op("-") {
                left = Expr::Binary("-", Box::new(left), Box::new(self.unary()?));
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, CelError> {
        if self.eat_op("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat_op("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn args(&mut self) -> Result<Vec<Expr>, CelError> {
        let mut args = Vec::new();
        if self.eat_op(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat_op(")") {
                return Ok(args);
            }
            self.expect_op(",")?;
        }
    }

    fn postfix(&mut self) -> Result<Expr, CelError> {
        let mut expr = self.primary()?;
        loop {
            if self.eat_op(".") {
                let Some(Token::Ident(name)) = self.peek().cloned() else {
                    return Err(CelError::Unsupported("expected field name".into()));
                };
                self.pos += 1;
                if self.eat_op("(") {
                    if name == "all" || name == "exists" {
                        let Some(Token::Ident(var)) = self.peek().cloned() else {
                            return Err(CelError::Unsupported("macro variable".into()));
                        };
                        self.pos += 1;
                        self.expect_op(",")?;
                        let body = self.expr()?;
                        self.expect_op(")")?;
                        expr = Expr::Macro(name, Box::new(expr), var, Box::new(body));
                    } else {
                        let args = self.args()?;
                        expr = Expr::Call(name, Some(Box::new(expr)), args);
                    }
                } else {
                    expr = Expr::Field(Box::new(expr), name);
                }
            } else if self.eat_op("[") {
                let index = self.expr()?;
                self.expect_op("]")?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, CelError> {
        let token = self
            .peek()
            .cloned()
            .ok_or_else(|| CelError::Unsupported("unexpected end".into()))?;
        self.pos += 1;
        match token {
            Token::Str(s) => Ok(Expr::Lit(Value::String(s))),
            Token::Int(n) => Ok(Expr::Lit(Value::from(n))),
            Token::Float(f) => Ok(Expr::Lit(Value::from(f))),
            Token::Op("(") => {
                let inner = self.expr()?;
                self.expect_op(")")?;
                Ok(inner)
            }
            Token::Op("[") => {
                let mut items = Vec::new();
                if !self.eat_op("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.eat_op("]") {
                            break;
                        }
                        self.expect_op(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Token::Ident(id) => match id.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                "has" => {
                    self.expect_op("(")?;
                    let inner = self.postfix()?;
                    self.expect_op(")")?;
                    if !matches!(inner, Expr::Field(..)) {
                        return Err(CelError::Unsupported(
                            "has() needs a field selection".into(),
                        ));
                    }
                    Ok(Expr::Has(Box::new(inner)))
                }
                _ if self.eat_op("(") => {
                    let args = self.args()?;
                    Ok(Expr::Call(id, None, args))
                }
                _ => Ok(Expr::Var(id)),
            },
            Token::Op(op) => Err(CelError::Unsupported(format!("unexpected {op}"))),
        }
    }
}

/// A parsed rule, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Program {
    expr: Expr,
    /// The rule refers to `oldSelf` (a transition rule, only checked on update).
    pub uses_old_self: bool,
}

/// Parses a rule; `Err(Unsupported)` when it is outside the subset.
pub fn compile(rule: &str) -> Result<Program, CelError> {
    let mut parser = Parser {
        tokens: tokenize(rule)?,
        pos: 0,
    };
    let expr = parser.expr()?;
    if parser.pos != parser.tokens.len() {
        return Err(CelError::Unsupported("trailing tokens".into()));
    }
    Ok(Program {
        uses_old_self: rule.contains("oldSelf"),
        expr,
    })
}

struct Scope<'a> {
    vars: Vec<(String, Value)>,
    self_value: &'a Value,
    old_self: Option<&'a Value>,
}

fn eval_err(msg: impl Into<String>) -> CelError {
    CelError::Eval(msg.into())
}

fn truthy(value: Result<Value, CelError>) -> Result<bool, CelError> {
    match value? {
        Value::Bool(b) => Ok(b),
        other => Err(eval_err(format!(
            "no such overload: expected bool, got {other}"
        ))),
    }
}

fn as_f64(value: &Value) -> Option<f64> {
    value.as_f64()
}

fn compare(op: &str, left: &Value, right: &Value) -> Result<bool, CelError> {
    let ordering = match (left, right) {
        (Value::Number(_), Value::Number(_)) => {
            let (a, b) = (as_f64(left).unwrap_or(0.0), as_f64(right).unwrap_or(0.0));
            a.partial_cmp(&b)
        }
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    let ordering =
        ordering.ok_or_else(|| eval_err(format!("no such overload: {left} {op} {right}")))?;
    Ok(match op {
        "<" => ordering.is_lt(),
        "<=" => ordering.is_le(),
        ">" => ordering.is_gt(),
        _ => ordering.is_ge(),
    })
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => as_f64(a) == as_f64(b),
        _ => a == b,
    }
}

fn eval(expr: &Expr, scope: &mut Scope<'_>) -> Result<Value, CelError> {
    match expr {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::List(items) => Ok(Value::Array(
            items
                .iter()
                .map(|i| eval(i, scope))
                .collect::<Result<_, _>>()?,
        )),
        Expr::Var(name) => {
            if let Some((_, v)) = scope.vars.iter().rev().find(|(n, _)| n == name) {
                return Ok(v.clone());
            }
            match name.as_str() {
                "self" => Ok(scope.self_value.clone()),
                "oldSelf" => scope
                    .old_self
                    .cloned()
                    .ok_or_else(|| eval_err("oldSelf is not available")),
                _ => Err(CelError::Unsupported(format!(
                    "undeclared reference to '{name}'"
                ))),
            }
        }
        Expr::Field(target, field) => {
            let value = eval(target, scope)?;
            match value {
                Value::Object(map) => map
                    .get(field)
                    .cloned()
                    .ok_or_else(|| eval_err(format!("no such key: {field}"))),
                other => Err(eval_err(format!("no such key: {field} on {other}"))),
            }
        }
        Expr::Index(target, index) => {
            let value = eval(target, scope)?;
            let index = eval(index, scope)?;
            match (&value, &index) {
                (Value::Array(items), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|i| items.get(i as usize))
                    .cloned()
                    .ok_or_else(|| eval_err("index out of bounds")),
                (Value::Object(map), Value::String(key)) => map
                    .get(key)
                    .cloned()
                    .ok_or_else(|| eval_err(format!("no such key: {key}"))),
                _ => Err(eval_err("invalid index")),
            }
        }
        Expr::Has(inner) => {
            let Expr::Field(target, field) = inner.as_ref() else {
                return Err(CelError::Unsupported("has".into()));
            };
            match eval(target, scope)? {
                Value::Object(map) => Ok(Value::Bool(map.get(field).is_some_and(|v| !v.is_null()))),
                _ => Ok(Value::Bool(false)),
            }
        }
        Expr::Not(inner) => Ok(Value::Bool(!truthy(eval(inner, scope))?)),
        Expr::Neg(inner) => match eval(inner, scope)? {
            Value::Number(n) => Ok(n
                .as_i64()
                .map(|i| Value::from(-i))
                .unwrap_or_else(|| Value::from(-n.as_f64().unwrap_or(0.0)))),
            _ => Err(eval_err("no such overload: -")),
        },
        Expr::Cond(cond, then, otherwise) => {
            if truthy(eval(cond, scope))? {
                eval(then, scope)
            } else {
                eval(otherwise, scope)
            }
        }
        Expr::Binary(op, left, right) => match *op {
            "||" => {
                let l = truthy(eval(left, scope));
                if matches!(l, Ok(true)) {
                    return Ok(Value::Bool(true));
                }
                let r = truthy(eval(right, scope));
                match (l, r) {
                    (_, Ok(true)) => Ok(Value::Bool(true)),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                    _ => Ok(Value::Bool(false)),
                }
            }
            "&&" => {
                let l = truthy(eval(left, scope));
                if matches!(l, Ok(false)) {
                    return Ok(Value::Bool(false));
                }
                let r = truthy(eval(right, scope));
                match (l, r) {
                    (_, Ok(false)) => Ok(Value::Bool(false)),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                    _ => Ok(Value::Bool(true)),
                }
            }
            _ => {
                let l = eval(left, scope)?;
                let r = eval(right, scope)?;
                match *op {
                    "==" => Ok(Value::Bool(values_equal(&l, &r))),
                    "!=" => Ok(Value::Bool(!values_equal(&l, &r))),
                    "in" => match &r {
                        Value::Array(items) => {
                            Ok(Value::Bool(items.iter().any(|i| values_equal(i, &l))))
                        }
                        Value::Object(map) => {
                            Ok(Value::Bool(l.as_str().is_some_and(|k| map.contains_key(k))))
                        }
                        _ => Err(eval_err("no such overload: in")),
                    },
                    "+" => match (&l, &r) {
                        (Value::String(a), Value::String(b)) => {
                            Ok(Value::String(format!("{a}{b}")))
                        }
                        (Value::Array(a), Value::Array(b)) => {
                            Ok(Value::Array(a.iter().chain(b).cloned().collect()))
                        }
                        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
                            (Some(x), Some(y)) => Ok(Value::from(x.saturating_add(y))),
                            _ => Ok(Value::from(
                                a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0),
                            )),
                        },
                        _ => Err(eval_err("no such overload: +")),
                    },
                    "-" => match (&l, &r) {
                        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
                            (Some(x), Some(y)) => Ok(Value::from(x.saturating_sub(y))),
                            _ => Ok(Value::from(
                                a.as_f64().unwrap_or(0.0) - b.as_f64().unwrap_or(0.0),
                            )),
                        },
                        _ => Err(eval_err("no such overload: -")),
                    },
                    other => Ok(Value::Bool(compare(other, &l, &r)?)),
                }
            }
        },
        Expr::Macro(name, target, var, body) => {
            let items = match eval(target, scope)? {
                Value::Array(items) => items,
                Value::Object(map) => map.keys().map(|k| Value::String(k.clone())).collect(),
                _ => return Err(eval_err(format!("no such overload: {name}"))),
            };
            let mut result = name == "all";
            for item in items {
                scope.vars.push((var.clone(), item));
                let outcome = truthy(eval(body, scope));
                scope.vars.pop();
                let outcome = outcome?;
                if name == "all" && !outcome {
                    result = false;
                    break;
                }
                if name == "exists" && outcome {
                    result = true;
                    break;
                }
            }
            Ok(Value::Bool(result))
        }
        Expr::Call(name, target, args) => {
            if !matches!(
                name.as_str(),
                "size" | "startsWith" | "endsWith" | "contains" | "matches"
            ) {
                return Err(CelError::Unsupported(format!("function {name}")));
            }
            let target = target.as_ref().map(|t| eval(t, scope)).transpose()?;
            let args: Vec<Value> = args
                .iter()
                .map(|a| eval(a, scope))
                .collect::<Result<_, _>>()?;
            let subject = target.as_ref().or(args.first());
            let size = |v: Option<&Value>| -> Result<Value, CelError> {
                match v {
                    Some(Value::String(s)) => Ok(Value::from(s.chars().count() as i64)),
                    Some(Value::Array(a)) => Ok(Value::from(a.len() as i64)),
                    Some(Value::Object(m)) => Ok(Value::from(m.len() as i64)),
                    _ => Err(eval_err("no such overload: size")),
                }
            };
            let string_arg = |i: usize| {
                args.get(i)
                    .and_then(Value::as_str)
                    .ok_or_else(|| eval_err(format!("no such overload: {name}")))
            };
            match (name.as_str(), &target) {
                ("size", _) => size(subject),
                ("startsWith", Some(Value::String(s))) => {
                    Ok(Value::Bool(s.starts_with(string_arg(0)?)))
                }
                ("endsWith", Some(Value::String(s))) => {
                    Ok(Value::Bool(s.ends_with(string_arg(0)?)))
                }
                ("contains", Some(Value::String(s))) => Ok(Value::Bool(s.contains(string_arg(0)?))),
                ("matches", Some(Value::String(s))) => {
                    let re =
                        regex::Regex::new(string_arg(0)?).map_err(|e| eval_err(e.to_string()))?;
                    Ok(Value::Bool(re.is_match(s)))
                }
                _ => Err(CelError::Unsupported(format!("function {name}"))),
            }
        }
    }
}

/// Evaluates a compiled rule against `self` (and `oldSelf` on updates).
pub fn evaluate(
    program: &Program,
    self_value: &Value,
    old_self: Option<&Value>,
) -> Result<bool, CelError> {
    let mut scope = Scope {
        vars: Vec::new(),
        self_value,
        old_self,
    };
    truthy(eval(&program.expr, &mut scope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: &str, value: Value) -> Result<bool, CelError> {
        evaluate(&compile(rule)?, &value, None)
    }

    #[test]
    fn incident_rule() {
        let rule = "self.source != 'alertmanager' || has(self.alert)";
        assert_eq!(check(rule, json!({"source": "manual"})), Ok(true));
        assert_eq!(check(rule, json!({"source": "alertmanager"})), Ok(false));
        assert_eq!(
            check(
                rule,
                json!({"source": "alertmanager", "alert": {"name": "x"}})
            ),
            Ok(true)
        );
    }

    #[test]
    fn operators_and_macros() {
        assert_eq!(
            check(
                "self.a > 1 && size(self.b) == 2",
                json!({"a": 2, "b": [1, 2]})
            ),
            Ok(true)
        );
        assert_eq!(
            check("self.b.all(x, x > 0)", json!({"b": [1, 2]})),
            Ok(true)
        );
        assert_eq!(
            check(
                "self.s.startsWith('ab') && self.s.size() == 3",
                json!({"s": "abc"})
            ),
            Ok(true)
        );
        assert_eq!(check("self.x in ['a', 'b']", json!({"x": "c"})), Ok(false));
        assert!(matches!(
            check("self.missing == 1", json!({})),
            Err(CelError::Eval(_))
        ));
        assert!(matches!(
            compile("quantity(self.q).isLessThan(1)").map(|p| evaluate(&p, &json!({}), None)),
            Ok(Err(CelError::Unsupported(_)))
        ));
    }
}
