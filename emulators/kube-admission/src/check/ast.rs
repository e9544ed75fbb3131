//! A CEL syntax tree with source positions, as cel-go's parser builds it: every node has an id
//! and the offset (in characters) of the token cel-go attributes it to (the `.` of a selection,
//! the operator of a call, the `(` of a member call), and macros (`has`, `all`, `exists`,
//! `exists_one`, `map`, `filter`, `cel.bind`) are expanded into the same comprehensions as
//! cel-go's `parser/macro.go`, so that type checking and cost estimation see the same tree.
//!
//! Syntax errors are reported by the `cel` crate's ANTLR parser (the grammar cel-go uses); this
//! parser builds the positioned tree of expressions that parse, and applies cel-go's two
//! recursion limits, which the `cel` crate counts differently: its parse listener's on nested
//! `expr` rules and its visitor's on the contexts it recurses into.

use super::MAX_RECURSION_DEPTH;

/// The function wrapped around the value of an optional list element or map entry.
pub(crate) const OPTIONAL_ENTRY: &str = "@optional_entry";

/// Name of the comprehension accumulator of every macro (cel-go v0.22 `parser.AccumulatorName`;
/// the two-variable macros of `ext/comprehensions.go` use it too, and a rule may name it).
pub(crate) const ACCU: &str = "__result__";

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lit {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    Null,
}

#[derive(Clone, Debug)]
pub(crate) struct Expr {
    pub(crate) id: u32,
    /// Character offset of the token the node is attributed to.
    pub(crate) pos: usize,
    pub(crate) kind: Kind,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Lit(Lit),
    Ident(String),
    Select {
        operand: Box<Expr>,
        field: String,
        test: bool,
    },
    Call {
        func: String,
        target: Option<Box<Expr>>,
        args: Vec<Expr>,
    },
    /// Optional elements are wrapped in a call to [`OPTIONAL_ENTRY`].
    List(Vec<Expr>),
    /// Optional entries have their value wrapped in a call to [`OPTIONAL_ENTRY`].
    Map(Vec<(Expr, Expr)>),
    Struct {
        name: String,
        fields: Vec<(String, Expr)>,
    },
    Comp(Box<Comp>),
}

#[derive(Clone, Debug)]
pub(crate) struct Comp {
    pub(crate) range: Expr,
    pub(crate) iter_var: String,
    /// The second variable of a two-variable comprehension (cel-go `ext.TwoVarComprehensions`,
    /// in the 1.32 environment): the value, `iter_var` being the index or key.
    pub(crate) iter_var2: Option<String>,
    /// The offset of the `,` written after the iteration variable of a one-variable macro
    /// (where a second variable can be written in); `None` for other comprehensions.
    pub(crate) var_comma: Option<usize>,
    pub(crate) accu_var: String,
    pub(crate) accu_init: Expr,
    pub(crate) cond: Expr,
    pub(crate) step: Expr,
    pub(crate) result: Expr,
}

impl Expr {
    pub(crate) fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            Kind::Lit(_) | Kind::Ident(_) => vec![],
            Kind::Select { operand, .. } => vec![operand],
            Kind::Call { target, args, .. } => target.iter().map(|t| &**t).chain(args).collect(),
            Kind::List(items) => items.iter().collect(),
            Kind::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
            Kind::Struct { fields, .. } => fields.iter().map(|(_, v)| v).collect(),
            Kind::Comp(c) => vec![&c.range, &c.accu_init, &c.cond, &c.step, &c.result],
        }
    }
}

/// A parse failure of this parser: one of cel-go's recursion limits (at [`NO_LOCATION`]), or,
/// for text the ANTLR parser accepted, unexpected.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) pos: usize,
    pub(crate) message: String,
}

/// cel-go's `common.NoLocation`, written `-1:0`: where its parser reports its recursion limits.
pub(crate) const NO_LOCATION: usize = usize::MAX;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    /// An integer literal too large for int64 unless negated.
    IntMinAbs,
    Uint(u64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
    Punct(&'static str),
    Eof,
}

struct Lexer<'a> {
    chars: &'a [char],
    i: usize,
}

const PUNCTS: [&str; 27] = [
    "&&", "||", "==", "!=", "<=", ">=", "?.", ".?", "[?", "!", "<", ">", "+", "-", "*", "/", "%",
    "(", ")", "[", "]", "{", "}", ".", ",", ":", "?",
];

impl Lexer<'_> {
    fn err<T>(&self, pos: usize, m: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            pos,
            message: m.into(),
        })
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn skip_space(&mut self) {
        loop {
            match self.peek(0) {
                Some(c) if c.is_whitespace() => self.i += 1,
                Some('/') if self.peek(1) == Some('/') => {
                    while let Some(c) = self.peek(0) {
                        if c == '\n' {
                            break;
                        }
                        self.i += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn all(mut self) -> Result<Vec<(Tok, usize)>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            self.skip_space();
            let start = self.i;
            let Some(c) = self.peek(0) else {
                out.push((Tok::Eof, start));
                return Ok(out);
            };
            let tok = if c.is_ascii_alphabetic() || c == '_' {
                // String prefixes: r, R, b, B and their combinations.
                let mut j = 0;
                let mut raw = false;
                let mut bytes = false;
                while j < 2 {
                    match self.peek(j) {
                        Some('r' | 'R') if !raw => raw = true,
                        Some('b' | 'B') if !bytes => bytes = true,
                        _ => break,
                    }
                    j += 1;
                }
                if j > 0 && matches!(self.peek(j), Some('"' | '\'')) {
                    self.i += j;
                    self.string(raw, bytes)?
                } else {
                    let mut s = String::new();
                    while let Some(c) = self.peek(0) {
                        if c.is_ascii_alphanumeric() || c == '_' {
                            s.push(c);
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                    Tok::Ident(s)
                }
            } else if c.is_ascii_digit()
                || (c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit()))
            {
                self.number()?
            } else if c == '"' || c == '\'' {
                self.string(false, false)?
            } else {
                let mut found = None;
                for p in PUNCTS {
                    let pc: Vec<char> = p.chars().collect();
                    if pc
                        .iter()
                        .enumerate()
                        .all(|(k, ch)| self.peek(k) == Some(*ch))
                    {
                        found = Some((p, pc.len()));
                        break;
                    }
                }
                match found {
                    // `x ?.5 : y` is a conditional and a double, not a `?.` token. (`.?` is
                    // always an optional selection: the grammar, checked first, wants a field
                    // name after it.)
                    Some(("?.", _)) => {
                        self.i += 1;
                        Tok::Punct("?")
                    }
                    Some((p, n)) => {
                        self.i += n;
                        Tok::Punct(p)
                    }
                    None => return self.err(start, format!("token recognition error at: '{c}'")),
                }
            };
            out.push((tok, start));
        }
    }

    fn number(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.i;
        if self.peek(0) == Some('0') && matches!(self.peek(1), Some('x' | 'X')) {
            self.i += 2;
            let mut s = String::new();
            while let Some(c) = self.peek(0).filter(|c| c.is_ascii_hexdigit()) {
                s.push(c);
                self.i += 1;
            }
            let v =
                u64::from_str_radix(&s, 16).or_else(|_| self.err(start, "invalid int literal"))?;
            if matches!(self.peek(0), Some('u' | 'U')) {
                self.i += 1;
                return Ok(Tok::Uint(v));
            }
            return int_tok(v).ok_or(SyntaxError {
                pos: start,
                message: "invalid int literal".into(),
            });
        }
        let mut s = String::new();
        let mut float = false;
        while let Some(c) = self.peek(0).filter(char::is_ascii_digit) {
            s.push(c);
            self.i += 1;
        }
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            s.push('.');
            self.i += 1;
            while let Some(c) = self.peek(0).filter(char::is_ascii_digit) {
                s.push(c);
                self.i += 1;
            }
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let mut j = 1;
            if matches!(self.peek(1), Some('+' | '-')) {
                j = 2;
            }
            if self.peek(j).is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                for _ in 0..j {
                    s.push(self.peek(0).unwrap_or('e'));
                    self.i += 1;
                }
                while let Some(c) = self.peek(0).filter(char::is_ascii_digit) {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
        if float {
            return s
                .parse::<f64>()
                .map(Tok::Double)
                .or_else(|_| self.err(start, "invalid double literal"));
        }
        let v: u64 = s
            .parse()
            .or_else(|_| self.err(start, "invalid int literal"))?;
        if matches!(self.peek(0), Some('u' | 'U')) {
            self.i += 1;
            return Ok(Tok::Uint(v));
        }
        int_tok(v).ok_or(SyntaxError {
            pos: start,
            message: "invalid int literal".into(),
        })
    }

    fn string(&mut self, raw: bool, bytes: bool) -> Result<Tok, SyntaxError> {
        let start = self.i;
        let Some(q) = self.peek(0) else {
            return self.err(start, "unterminated string");
        };
        let triple = self.peek(1) == Some(q) && self.peek(2) == Some(q);
        self.i += if triple { 3 } else { 1 };
        let mut out: Vec<u8> = Vec::new();
        let push_char = |out: &mut Vec<u8>, c: char| {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        };
        loop {
            let Some(c) = self.peek(0) else {
                return self.err(start, "unterminated string");
            };
            if c == q && (!triple || (self.peek(1) == Some(q) && self.peek(2) == Some(q))) {
                self.i += if triple { 3 } else { 1 };
                break;
            }
            if c == '\\' && !raw {
                let Some(e) = self.peek(1) else {
                    return self.err(self.i, "invalid escape sequence");
                };
                self.i += 2;
                match e {
                    'a' => out.push(7),
                    'b' => out.push(8),
                    'f' => out.push(12),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    'v' => out.push(11),
                    '\\' | '\'' | '"' | '`' | '?' => out.push(e as u8),
                    'x' | 'X' | 'u' | 'U' => {
                        let n = match e {
                            'x' | 'X' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n).filter_map(|k| self.peek(k)).collect();
                        let v = u32::from_str_radix(&hex, 16)
                            .or_else(|_| self.err(self.i, "invalid escape sequence"))?;
                        self.i += n;
                        if bytes && n == 2 {
                            out.push(v as u8);
                        } else {
                            let ch = char::from_u32(v).ok_or(SyntaxError {
                                pos: self.i,
                                message: "invalid unicode code point".into(),
                            })?;
                            push_char(&mut out, ch);
                        }
                    }
                    '0'..='3' => {
                        let oct: String = std::iter::once(e)
                            .chain((0..2).filter_map(|k| self.peek(k)))
                            .collect();
                        let v = u32::from_str_radix(&oct, 8)
                            .or_else(|_| self.err(self.i, "invalid escape sequence"))?;
                        self.i += 2;
                        if bytes {
                            out.push(v as u8);
                        } else {
                            push_char(&mut out, char::from_u32(v).unwrap_or('\u{fffd}'));
                        }
                    }
                    _ => return self.err(self.i, "invalid escape sequence"),
                }
                continue;
            }
            if !triple && (c == '\n' || c == '\r') {
                return self.err(self.i, "unterminated string");
            }
            push_char(&mut out, c);
            self.i += 1;
        }
        if bytes {
            Ok(Tok::Bytes(out))
        } else {
            Ok(Tok::Str(String::from_utf8_lossy(&out).into_owned()))
        }
    }
}

fn int_tok(v: u64) -> Option<Tok> {
    if v == i64::MAX as u64 + 1 {
        Some(Tok::IntMinAbs)
    } else {
        i64::try_from(v).ok().map(Tok::Int)
    }
}

const RESERVED: [&str; 17] = [
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

pub(crate) struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    next_id: u32,
    /// By node id: the depth cel-go's parse-tree visitor reaches below the node (see
    /// [`Parser::node`]).
    heights: Vec<usize>,
}

/// Parses `source` into a positioned tree with macros expanded.
pub(crate) fn parse(source: &str) -> Result<Expr, SyntaxError> {
    let chars: Vec<char> = source.chars().collect();
    let toks = Lexer {
        chars: &chars,
        i: 0,
    }
    .all()?;
    let mut p = Parser {
        toks,
        i: 0,
        next_id: 1,
        heights: vec![0],
    };
    let e = p.expr(1)?;
    if !matches!(p.peek(), Tok::Eof) {
        return Err(SyntaxError {
            pos: p.pos(),
            message: "unexpected input".into(),
        });
    }
    // cel-go's visitor counts its recursion into the contexts it does not unnest (`Visit`);
    // past the limit it panics with an internal error, reported without a location.
    if p.heights[e.id as usize] > MAX_RECURSION_DEPTH {
        return Err(SyntaxError {
            pos: NO_LOCATION,
            message: "max recursion depth exceeded".into(),
        });
    }
    Ok(e)
}

/// Calls whose parse-tree context cel-go's visitor counts: a binary `relation` or `calc`, a
/// conditional `expr`, an index, an optional select (`Visit`: `RelationContext`,
/// `CalcContext`, `ExprContext`, `IndexContext`, `SelectContext`, after `unnest`).
const COUNTED_CALLS: [&str; 16] = [
    "_<_", "_<=_", "_>_", "_>=_", "_==_", "_!=_", "@in", "_+_", "_-_", "_*_", "_/_", "_%_",
    "_?_:_", "_[_]", "_[?_]", "_?._",
];

impl Parser {
    // `i` stays on a token: the lexer ends the list with `Eof`, which `bump` never passes.
    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }

    fn pos(&self) -> usize {
        self.toks[self.i].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.i].clone();
        if t.0 != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is(p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<usize, SyntaxError> {
        let pos = self.pos();
        if self.eat(p) {
            Ok(pos)
        } else {
            Err(SyntaxError {
                pos,
                message: format!("expected '{p}'"),
            })
        }
    }

    /// A new node, with the depth cel-go's visitor reaches below it: one more than its
    /// deepest child for a context the visitor counts (the calls above, a select), as deep
    /// as its deepest child otherwise. Parentheses, literals, lists, maps, messages, global
    /// calls and unary operators are not counted; [`Parser::member_suffix`] sets the depth of
    /// a member call, a macro or not.
    fn node(&mut self, pos: usize, kind: Kind) -> Expr {
        let id = self.next_id;
        self.next_id += 1;
        let e = Expr { id, pos, kind };
        let below = e
            .children()
            .iter()
            .map(|c| self.heights[c.id as usize])
            .max()
            .unwrap_or(0);
        let counted = match &e.kind {
            Kind::Select { .. } => true,
            Kind::Call { func, .. } => COUNTED_CALLS.contains(&func.as_str()),
            _ => false,
        };
        self.heights.push(below + usize::from(counted));
        e
    }

    /// A copy of `e` with fresh ids (cel-go `MacroExprFactory.Copy`).
    fn copy_fresh(&mut self, e: &Expr) -> Expr {
        let kind = match &e.kind {
            Kind::Lit(l) => Kind::Lit(l.clone()),
            Kind::Ident(n) => Kind::Ident(n.clone()),
            Kind::Select {
                operand,
                field,
                test,
            } => Kind::Select {
                operand: Box::new(self.copy_fresh(operand)),
                field: field.clone(),
                test: *test,
            },
            Kind::Call { func, target, args } => Kind::Call {
                func: func.clone(),
                target: target.as_ref().map(|t| Box::new(self.copy_fresh(t))),
                args: args.iter().map(|a| self.copy_fresh(a)).collect(),
            },
            Kind::List(items) => Kind::List(items.iter().map(|i| self.copy_fresh(i)).collect()),
            Kind::Map(entries) => Kind::Map(
                entries
                    .iter()
                    .map(|(k, v)| (self.copy_fresh(k), self.copy_fresh(v)))
                    .collect(),
            ),
            Kind::Struct { name, fields } => Kind::Struct {
                name: name.clone(),
                fields: fields
                    .iter()
                    .map(|(f, v)| (f.clone(), self.copy_fresh(v)))
                    .collect(),
            },
            Kind::Comp(c) => Kind::Comp(Box::new(Comp {
                range: self.copy_fresh(&c.range),
                iter_var: c.iter_var.clone(),
                iter_var2: c.iter_var2.clone(),
                var_comma: c.var_comma,
                accu_var: c.accu_var.clone(),
                accu_init: self.copy_fresh(&c.accu_init),
                cond: self.copy_fresh(&c.cond),
                step: self.copy_fresh(&c.step),
                result: self.copy_fresh(&c.result),
            })),
        };
        self.node(e.pos, kind)
    }

    /// An optional list element or map entry (`[?x]`, `{?k: v}`) holds an optional; the
    /// aggregate has the type of its value. The checker sees [`OPTIONAL_ENTRY`] around it.
    fn optional_entry(&mut self, optional: bool, value: Expr) -> Expr {
        if optional {
            let pos = value.pos;
            self.call(pos, OPTIONAL_ENTRY, None, vec![value])
        } else {
            value
        }
    }

    fn call(&mut self, pos: usize, func: &str, target: Option<Expr>, args: Vec<Expr>) -> Expr {
        self.node(
            pos,
            Kind::Call {
                func: func.to_string(),
                target: target.map(Box::new),
                args,
            },
        )
    }

    /// cel-go's parse listener counts how deep `expr` rules nest (`recursionListener`; the
    /// top-level expression is 1) and stops the parse past the limit, without a location.
    fn depth_check(&self, depth: usize) -> Result<(), SyntaxError> {
        if depth > MAX_RECURSION_DEPTH {
            Err(SyntaxError {
                pos: NO_LOCATION,
                message: format!("expression recursion limit exceeded: {MAX_RECURSION_DEPTH}"),
            })
        } else {
            Ok(())
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        self.depth_check(depth)?;
        let cond = self.or(depth)?;
        if self.is("?") {
            let (_, pos) = self.bump();
            let a = self.or(depth)?;
            self.expect(":")?;
            let b = self.expr(depth + 1)?;
            return Ok(self.call(pos, "_?_:_", None, vec![cond, a, b]));
        }
        Ok(cond)
    }

    /// `||` and `&&` chains become balanced trees, as in cel-go's `LogicManager`.
    fn logic(
        &mut self,
        depth: usize,
        op: &'static str,
        func: &str,
        next: fn(&mut Parser, usize) -> Result<Expr, SyntaxError>,
    ) -> Result<Expr, SyntaxError> {
        let first = next(self, depth)?;
        let mut terms = vec![first];
        let mut ops = Vec::new();
        while self.is(op) {
            let (_, pos) = self.bump();
            ops.push(pos);
            terms.push(next(self, depth)?);
        }
        if terms.len() == 1 {
            return Ok(terms.remove(0));
        }
        Ok(self.balance(
            func,
            &mut terms.into_iter().map(Some).collect::<Vec<_>>(),
            &ops,
            0,
            ops.len() - 1,
        ))
    }

    fn balance(
        &mut self,
        func: &str,
        terms: &mut [Option<Expr>],
        ops: &[usize],
        lo: usize,
        hi: usize,
    ) -> Expr {
        let mid = (lo + hi).div_ceil(2);
        let left = if mid == lo {
            terms[mid]
                .take()
                .unwrap_or_else(|| self.node(0, Kind::Lit(Lit::Null)))
        } else {
            self.balance(func, terms, ops, lo, mid - 1)
        };
        let right = if mid == hi {
            terms[mid + 1]
                .take()
                .unwrap_or_else(|| self.node(0, Kind::Lit(Lit::Null)))
        } else {
            self.balance(func, terms, ops, mid + 1, hi)
        };
        self.call(ops[mid], func, None, vec![left, right])
    }

    fn or(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        self.logic(depth, "||", "_||_", Parser::and)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        self.logic(depth, "&&", "_&&_", Parser::relation)
    }

    fn relation(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        let mut lhs = self.calc(depth, 0)?;
        loop {
            let func = match self.peek() {
                Tok::Punct("<") => "_<_",
                Tok::Punct("<=") => "_<=_",
                Tok::Punct(">") => "_>_",
                Tok::Punct(">=") => "_>=_",
                Tok::Punct("==") => "_==_",
                Tok::Punct("!=") => "_!=_",
                Tok::Ident(s) if s == "in" => "@in",
                _ => return Ok(lhs),
            };
            let (_, pos) = self.bump();
            let rhs = self.calc(depth, 0)?;
            lhs = self.call(pos, func, None, vec![lhs, rhs]);
        }
    }

    /// Level 0: `+ -`; level 1: `* / %`.
    fn calc(&mut self, depth: usize, level: u8) -> Result<Expr, SyntaxError> {
        let mut lhs = if level == 0 {
            self.calc(depth, 1)?
        } else {
            self.unary(depth)?
        };
        loop {
            let func = match (level, self.peek()) {
                (0, Tok::Punct("+")) => "_+_",
                (0, Tok::Punct("-")) => "_-_",
                (1, Tok::Punct("*")) => "_*_",
                (1, Tok::Punct("/")) => "_/_",
                (1, Tok::Punct("%")) => "_%_",
                _ => return Ok(lhs),
            };
            let (_, pos) = self.bump();
            let rhs = if level == 0 {
                self.calc(depth, 1)?
            } else {
                self.unary(depth)?
            };
            lhs = self.call(pos, func, None, vec![lhs, rhs]);
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        for (op, func) in [("!", "!_"), ("-", "-_")] {
            if self.is(op) {
                // A single minus before a number is part of the literal.
                if op == "-"
                    && let Some((Tok::Int(_) | Tok::IntMinAbs | Tok::Double(_), _)) =
                        self.toks.get(self.i + 1)
                {
                    let (_, pos) = self.bump();
                    let (t, _) = self.bump();
                    let lit = match t {
                        Tok::Int(v) => Lit::Int(-v),
                        Tok::IntMinAbs => Lit::Int(i64::MIN),
                        Tok::Double(d) => Lit::Double(-d),
                        _ => Lit::Null,
                    };
                    let e = self.node(pos, Kind::Lit(lit));
                    return self.member_suffix(depth, e);
                }
                let mut count = 0;
                let mut first = 0;
                while self.is(op) {
                    let (_, p) = self.bump();
                    if count == 0 {
                        first = p;
                    }
                    count += 1;
                }
                let operand = self.member(depth)?;
                if count % 2 == 0 {
                    return Ok(operand);
                }
                return Ok(self.call(first, func, None, vec![operand]));
            }
        }
        self.member(depth)
    }

    /// A call's arguments, up to `close`, and the offset of the first `,`.
    fn args(
        &mut self,
        depth: usize,
        close: &str,
    ) -> Result<(Vec<Expr>, Option<usize>), SyntaxError> {
        let mut args = Vec::new();
        let mut first_comma = None;
        if self.eat(close) {
            return Ok((args, first_comma));
        }
        loop {
            args.push(self.expr(depth + 1)?);
            if self.eat(close) {
                return Ok((args, first_comma));
            }
            let comma = self.expect(",")?;
            first_comma.get_or_insert(comma);
            if self.eat(close) {
                return Ok((args, first_comma));
            }
        }
    }

    fn member(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        let e = self.primary(depth)?;
        self.member_suffix(depth, e)
    }

    fn member_suffix(&mut self, depth: usize, mut e: Expr) -> Result<Expr, SyntaxError> {
        loop {
            if self.is(".") || self.is(".?") {
                let optional = self.is(".?");
                let (_, pos) = self.bump();
                let (t, fpos) = self.bump();
                let Tok::Ident(name) = t else {
                    return Err(SyntaxError {
                        pos: fpos,
                        message: "expected a field name".into(),
                    });
                };
                if !optional && self.is("(") {
                    let (_, open) = self.bump();
                    let (args, first_comma) = self.args(depth, ")")?;
                    // A member call, macro or not, is one counted context over its operand
                    // and arguments.
                    let height = std::iter::once(&e)
                        .chain(&args)
                        .map(|x| self.heights[x.id as usize])
                        .max()
                        .unwrap_or(0)
                        + 1;
                    e = self.receiver_call(open, name, e, args, first_comma)?;
                    self.heights[e.id as usize] = height;
                } else if optional {
                    let field = self.node(fpos, Kind::Lit(Lit::String(name)));
                    e = self.call(pos, "_?._", None, vec![e, field]);
                } else {
                    e = self.node(
                        pos,
                        Kind::Select {
                            operand: Box::new(e),
                            field: name,
                            test: false,
                        },
                    );
                }
            } else if self.is("[") || self.is("[?") {
                let optional = self.is("[?");
                let (_, pos) = self.bump();
                let index = self.expr(depth + 1)?;
                self.expect("]")?;
                let func = if optional { "_[?_]" } else { "_[_]" };
                e = self.call(pos, func, None, vec![e, index]);
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, SyntaxError> {
        let (t, pos) = self.bump();
        Ok(match t {
            Tok::Int(v) => self.node(pos, Kind::Lit(Lit::Int(v))),
            // `Tok::IntMinAbs` without its minus: the ANTLR parser refuses it first ("invalid
            // int literal"), so it ends here as an unexpected token, never shown.
            Tok::Uint(v) => self.node(pos, Kind::Lit(Lit::Uint(v))),
            Tok::Double(v) => self.node(pos, Kind::Lit(Lit::Double(v))),
            Tok::Str(s) => self.node(pos, Kind::Lit(Lit::String(s))),
            Tok::Bytes(b) => self.node(pos, Kind::Lit(Lit::Bytes(b))),
            Tok::Punct("(") => {
                let e = self.expr(depth + 1)?;
                self.expect(")")?;
                e
            }
            // `[?x, …]`: the lexer reads `[?` as one token (the optional index's).
            Tok::Punct(open @ ("[" | "[?")) => {
                let items = self.list_items(depth, open == "[?")?;
                self.node(pos, Kind::List(items))
            }
            Tok::Punct("{") => {
                let mut entries = Vec::new();
                if !self.eat("}") {
                    loop {
                        let optional = self.eat("?");
                        let k = self.expr(depth + 1)?;
                        self.expect(":")?;
                        let v = self.expr(depth + 1)?;
                        let v = self.optional_entry(optional, v);
                        entries.push((k, v));
                        if self.eat("}") {
                            break;
                        }
                        self.expect(",")?;
                        if self.eat("}") {
                            break;
                        }
                    }
                }
                self.node(pos, Kind::Map(entries))
            }
            Tok::Punct(".") => {
                let (t, ipos) = self.bump();
                let Tok::Ident(name) = t else {
                    return Err(SyntaxError {
                        pos: ipos,
                        message: "expected an identifier".into(),
                    });
                };
                self.ident_or_call(depth, format!(".{name}"), ipos)?
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => self.node(pos, Kind::Lit(Lit::Bool(true))),
                "false" => self.node(pos, Kind::Lit(Lit::Bool(false))),
                "null" => self.node(pos, Kind::Lit(Lit::Null)),
                n if RESERVED.contains(&n) || n == "in" => {
                    return Err(SyntaxError {
                        pos,
                        message: format!("reserved identifier: {n}"),
                    });
                }
                _ => self.ident_or_call(depth, name, pos)?,
            },
            _ => {
                return Err(SyntaxError {
                    pos,
                    message: "unexpected token".into(),
                });
            }
        })
    }

    /// A list literal's items, after its `[` (`[?`: the first item is optional).
    fn list_items(&mut self, depth: usize, first_optional: bool) -> Result<Vec<Expr>, SyntaxError> {
        let mut items = Vec::new();
        if !first_optional && self.eat("]") {
            return Ok(items);
        }
        let mut optional = first_optional;
        loop {
            optional = optional || self.eat("?");
            let item = self.expr(depth + 1)?;
            items.push(self.optional_entry(optional, item));
            optional = false;
            if self.eat("]") {
                return Ok(items);
            }
            self.expect(",")?;
            if self.eat("]") {
                return Ok(items);
            }
        }
    }

    fn ident_or_call(
        &mut self,
        depth: usize,
        name: String,
        pos: usize,
    ) -> Result<Expr, SyntaxError> {
        if self.is("(") {
            let (_, open) = self.bump();
            let (args, _) = self.args(depth, ")")?;
            return self.global_call(open, name, args);
        }
        if self.is("{") {
            // Message construction `Name{field: value}`.
            let (_, open) = self.bump();
            let mut fields = Vec::new();
            if !self.eat("}") {
                loop {
                    self.eat("?");
                    let (t, fpos) = self.bump();
                    let Tok::Ident(f) = t else {
                        return Err(SyntaxError {
                            pos: fpos,
                            message: "expected a field name".into(),
                        });
                    };
                    self.expect(":")?;
                    let v = self.expr(depth + 1)?;
                    fields.push((f, v));
                    if self.eat("}") {
                        break;
                    }
                    self.expect(",")?;
                    if self.eat("}") {
                        break;
                    }
                }
            }
            return Ok(self.node(open, Kind::Struct { name, fields }));
        }
        Ok(self.node(pos, Kind::Ident(name)))
    }

    fn global_call(
        &mut self,
        pos: usize,
        func: String,
        mut args: Vec<Expr>,
    ) -> Result<Expr, SyntaxError> {
        if func == "has" && args.len() == 1 {
            let arg = args.remove(0);
            return match arg.kind {
                Kind::Select { operand, field, .. } => Ok(self.node(
                    pos,
                    Kind::Select {
                        operand,
                        field,
                        test: true,
                    },
                )),
                _ => Err(SyntaxError {
                    pos: arg.pos,
                    message: "invalid argument to has() macro".into(),
                }),
            };
        }
        Ok(self.call(pos, &func, None, args))
    }

    fn receiver_call(
        &mut self,
        pos: usize,
        func: String,
        target: Expr,
        mut args: Vec<Expr>,
        first_comma: Option<usize>,
    ) -> Result<Expr, SyntaxError> {
        let iter_var = |a: &Expr| match &a.kind {
            Kind::Ident(v) => Some(v.clone()),
            _ => None,
        };
        let quantifier =
            matches!(func.as_str(), "all" | "exists" | "exists_one") && args.len() == 2;
        let mapper =
            (func == "map" && matches!(args.len(), 2 | 3)) || (func == "filter" && args.len() == 2);
        let bind = func == "bind"
            && args.len() == 3
            && matches!(&target.kind, Kind::Ident(n) if n == "cel");
        if bind {
            let Some(var) = iter_var(&args[0]) else {
                return Err(SyntaxError {
                    pos: args[0].pos,
                    message: "cel.bind() variable names must be simple identifiers".into(),
                });
            };
            let result = args.remove(2);
            let init = args.remove(1);
            let range = self.node(pos, Kind::List(vec![]));
            let cond = self.node(pos, Kind::Lit(Lit::Bool(false)));
            let step = self.node(pos, Kind::Ident(var.clone()));
            return Ok(self.node(
                pos,
                Kind::Comp(Box::new(Comp {
                    range,
                    iter_var: "#unused".into(),
                    iter_var2: None,
                    var_comma: None,
                    accu_var: var,
                    accu_init: init,
                    cond,
                    step,
                    result,
                })),
            ));
        }
        // cel-go `cel/library.go` optMap / optFlatMap: `target.hasValue() ?
        // optional.of(cel.bind(v, target.value(), expr)) : optional.none()` (optFlatMap without
        // the `optional.of`).
        if matches!(func.as_str(), "optMap" | "optFlatMap") && args.len() == 2 {
            let Some(var) = iter_var(&args[0]) else {
                return Err(SyntaxError {
                    pos: args[0].pos,
                    message: format!("{func}() variable name must be a simple identifier"),
                });
            };
            let mapped = args.remove(1);
            let copy = self.copy_fresh(&target);
            let has_value = self.call(pos, "hasValue", Some(target), vec![]);
            let value = self.call(pos, "value", Some(copy), vec![]);
            let range = self.node(pos, Kind::List(vec![]));
            let cond = self.node(pos, Kind::Lit(Lit::Bool(false)));
            let step = self.node(pos, Kind::Ident(var.clone()));
            let mut bound = self.node(
                pos,
                Kind::Comp(Box::new(Comp {
                    range,
                    iter_var: "#unused".into(),
                    iter_var2: None,
                    var_comma: None,
                    accu_var: var,
                    accu_init: value,
                    cond,
                    step,
                    result: mapped,
                })),
            );
            if func == "optMap" {
                bound = self.call(pos, "optional.of", None, vec![bound]);
            }
            let none = self.call(pos, "optional.none", None, vec![]);
            return Ok(self.call(pos, "_?_:_", None, vec![has_value, bound, none]));
        }
        let two_var = (matches!(func.as_str(), "all" | "exists" | "existsOne" | "exists_one")
            && args.len() == 3)
            || (matches!(
                func.as_str(),
                "transformList" | "transformMap" | "transformMapEntry"
            ) && matches!(args.len(), 3 | 4));
        if two_var {
            return self.two_var(pos, &func, target, args);
        }
        if !quantifier && !mapper {
            return Ok(self.call(pos, &func, Some(target), args));
        }
        let Some(v) = iter_var(&args[0]) else {
            let message = if quantifier {
                "argument must be a simple name"
            } else {
                "argument is not an identifier"
            };
            return Err(SyntaxError {
                pos: args[0].pos,
                message: message.into(),
            });
        };
        if v == ACCU {
            return Err(SyntaxError {
                pos: args[0].pos,
                message: "iteration variable overwrites accumulator variable".into(),
            });
        }
        let accu = |p: &mut Parser| p.node(pos, Kind::Ident(ACCU.into()));
        let (init, cond, step, result) = match func.as_str() {
            "all" => {
                let pred = args.remove(1);
                let init = self.node(pos, Kind::Lit(Lit::Bool(true)));
                let a = accu(self);
                let cond = self.call(pos, "@not_strictly_false", None, vec![a]);
                let a = accu(self);
                let step = self.call(pos, "_&&_", None, vec![a, pred]);
                (init, cond, step, accu(self))
            }
            "exists" => {
                let pred = args.remove(1);
                let init = self.node(pos, Kind::Lit(Lit::Bool(false)));
                let a = accu(self);
                let not = self.call(pos, "!_", None, vec![a]);
                let cond = self.call(pos, "@not_strictly_false", None, vec![not]);
                let a = accu(self);
                let step = self.call(pos, "_||_", None, vec![a, pred]);
                (init, cond, step, accu(self))
            }
            "exists_one" => {
                let pred = args.remove(1);
                let init = self.node(pos, Kind::Lit(Lit::Int(0)));
                let cond = self.node(pos, Kind::Lit(Lit::Bool(true)));
                let a = accu(self);
                let one = self.node(pos, Kind::Lit(Lit::Int(1)));
                let inc = self.call(pos, "_+_", None, vec![a, one]);
                let a = accu(self);
                let step = self.call(pos, "_?_:_", None, vec![pred, inc, a]);
                let a = accu(self);
                let one = self.node(pos, Kind::Lit(Lit::Int(1)));
                let result = self.call(pos, "_==_", None, vec![a, one]);
                (init, cond, step, result)
            }
            "map" => {
                let (filter, f) = if args.len() == 3 {
                    let f = args.remove(2);
                    (Some(args.remove(1)), f)
                } else {
                    (None, args.remove(1))
                };
                let init = self.node(pos, Kind::List(vec![]));
                let cond = self.node(pos, Kind::Lit(Lit::Bool(true)));
                let a = accu(self);
                let l = self.node(pos, Kind::List(vec![f]));
                let mut step = self.call(pos, "_+_", None, vec![a, l]);
                if let Some(filter) = filter {
                    let a = accu(self);
                    step = self.call(pos, "_?_:_", None, vec![filter, step, a]);
                }
                (init, cond, step, accu(self))
            }
            _ => {
                // filter
                let pred = args.remove(1);
                let elem = args.remove(0);
                let init = self.node(pos, Kind::List(vec![]));
                let cond = self.node(pos, Kind::Lit(Lit::Bool(true)));
                let a = accu(self);
                let l = self.node(pos, Kind::List(vec![elem]));
                let add = self.call(pos, "_+_", None, vec![a, l]);
                let a = accu(self);
                let step = self.call(pos, "_?_:_", None, vec![pred, add, a]);
                (init, cond, step, accu(self))
            }
        };
        Ok(self.node(
            pos,
            Kind::Comp(Box::new(Comp {
                range: target,
                iter_var: v,
                iter_var2: None,
                var_comma: first_comma,
                accu_var: ACCU.into(),
                accu_init: init,
                cond,
                step,
                result,
            })),
        ))
    }
}

impl Parser {
    /// cel-go `ext/comprehensions.go` macros.
    fn two_var(
        &mut self,
        pos: usize,
        func: &str,
        target: Expr,
        mut args: Vec<Expr>,
    ) -> Result<Expr, SyntaxError> {
        let name = |a: &Expr| match &a.kind {
            Kind::Ident(v) => Some(v.clone()),
            _ => None,
        };
        let (Some(v1), Some(v2)) = (name(&args[0]), name(&args[1])) else {
            let bad = if name(&args[0]).is_none() {
                &args[0]
            } else {
                &args[1]
            };
            return Err(SyntaxError {
                pos: bad.pos,
                message: "argument must be a simple name".into(),
            });
        };
        if v1 == v2 {
            return Err(SyntaxError {
                pos: args[1].pos,
                message: format!("duplicate variable name: {v1}"),
            });
        }
        // cel-go v0.22 `extractIterVars`: each variable is checked, and blamed, on its own.
        for (v, arg) in [(&v1, &args[0]), (&v2, &args[1])] {
            if v == ACCU {
                return Err(SyntaxError {
                    pos: arg.pos,
                    message: "iteration variable overwrites accumulator variable".into(),
                });
            }
        }
        let accu = |p: &mut Parser| p.node(pos, Kind::Ident(ACCU.into()));
        let rest: Vec<Expr> = args.drain(2..).collect();
        let (init, cond, step, result) = match func {
            "all" | "exists" | "existsOne" | "exists_one" => {
                let pred = rest
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| self.node(pos, Kind::Lit(Lit::Bool(true))));
                match func {
                    "all" => {
                        let init = self.node(pos, Kind::Lit(Lit::Bool(true)));
                        let a = accu(self);
                        let cond = self.call(pos, "@not_strictly_false", None, vec![a]);
                        let a = accu(self);
                        let step = self.call(pos, "_&&_", None, vec![a, pred]);
                        (init, cond, step, accu(self))
                    }
                    "exists" => {
                        let init = self.node(pos, Kind::Lit(Lit::Bool(false)));
                        let a = accu(self);
                        let not = self.call(pos, "!_", None, vec![a]);
                        let cond = self.call(pos, "@not_strictly_false", None, vec![not]);
                        let a = accu(self);
                        let step = self.call(pos, "_||_", None, vec![a, pred]);
                        (init, cond, step, accu(self))
                    }
                    _ => {
                        let init = self.node(pos, Kind::Lit(Lit::Int(0)));
                        let cond = self.node(pos, Kind::Lit(Lit::Bool(true)));
                        let a = accu(self);
                        let one = self.node(pos, Kind::Lit(Lit::Int(1)));
                        let inc = self.call(pos, "_+_", None, vec![a, one]);
                        let a = accu(self);
                        let step = self.call(pos, "_?_:_", None, vec![pred, inc, a]);
                        let a = accu(self);
                        let one = self.node(pos, Kind::Lit(Lit::Int(1)));
                        let result = self.call(pos, "_==_", None, vec![a, one]);
                        (init, cond, step, result)
                    }
                }
            }
            _ => {
                let mut rest = rest.into_iter();
                let first = rest.next();
                let second = rest.next();
                let (filter, transform) = match (first, second) {
                    (Some(f), Some(t)) => (Some(f), t),
                    (Some(t), None) => (None, t),
                    _ => (None, self.node(pos, Kind::Lit(Lit::Null))),
                };
                let cond = self.node(pos, Kind::Lit(Lit::Bool(true)));
                let (init, mut step) = if func == "transformList" {
                    let init = self.node(pos, Kind::List(vec![]));
                    let a = accu(self);
                    let l = self.node(pos, Kind::List(vec![transform]));
                    (init, self.call(pos, "_+_", None, vec![a, l]))
                } else if func == "transformMap" {
                    let init = self.node(pos, Kind::Map(vec![]));
                    let a = accu(self);
                    let k = self.node(pos, Kind::Ident(v1.clone()));
                    (
                        init,
                        self.call(pos, "cel.@mapInsert", None, vec![a, k, transform]),
                    )
                } else {
                    let init = self.node(pos, Kind::Map(vec![]));
                    let a = accu(self);
                    (
                        init,
                        self.call(pos, "cel.@mapInsert", None, vec![a, transform]),
                    )
                };
                if let Some(f) = filter {
                    let a = accu(self);
                    step = self.call(pos, "_?_:_", None, vec![f, step, a]);
                }
                (init, cond, step, accu(self))
            }
        };
        Ok(self.node(
            pos,
            Kind::Comp(Box::new(Comp {
                range: target,
                iter_var: v1,
                iter_var2: Some(v2),
                var_comma: None,
                accu_var: ACCU.into(),
                accu_init: init,
                cond,
                step,
                result,
            })),
        ))
    }
}

/// 1-based line and 0-based column (in characters) of a character offset.
pub(crate) fn line_col(source: &str, pos: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 0;
    for (i, c) in source.chars().enumerate() {
        if i == pos {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 0;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// cel-go's `maxSnippetLength` (common/error.go).
const MAX_SNIPPET_LENGTH: usize = 16384;

/// cel-go's `Error.ToDisplayString`: `ERROR: <input>:L:C: message`, the source line and a caret.
pub(crate) fn display_error(source: &str, pos: usize, message: &str) -> String {
    if pos == NO_LOCATION {
        return format!("ERROR: <input>:-1:0: {message}");
    }
    let (line, col) = line_col(source, pos);
    let mut out = format!("ERROR: <input>:{line}:{}: {message}", col + 1);
    // cel-go leaves out the snippet of a line longer than `maxSnippetLength` bytes.
    if let Some(snippet) = source.split('\n').nth(line - 1)
        && snippet.len() <= MAX_SNIPPET_LENGTH
    {
        let snippet = snippet.replace('\t', " ");
        let snippet = snippet.strip_suffix('\r').unwrap_or(&snippet);
        out.push_str("\n | ");
        out.push_str(snippet);
        out.push_str("\n | ");
        for c in snippet.chars().take(col) {
            // cel-go widens the caret line for multi-byte characters.
            out.push(if c.len_utf8() > 1 { '\u{ff0e}' } else { '.' });
        }
        out.push('^');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This parser now runs before the grammar's, on any text: every prefix of rules that use
    /// each construct (a prefix is rarely valid) parses or fails, never panics.
    #[test]
    fn every_prefix_of_a_rule_parses_or_fails_without_panicking() {
        let rules = [
            r"self.l.all(i, v, __result__ && v > 0) ? {'a': [1, 2u, 3.5e-1]}['a'][?0] : none",
            r"cel.bind(x, b'\xff\377', x.size()) == 2 && has(self.m.x) || !!self.b",
            r#"r'''a''b''' + """c""" + '\u00e9\U0001F600\x41\101' != .self.?s.orValue('')"#,
            r"self.m.transformMap(k, v, v != '', size(v)).exists_one(k, k in ['x']) // c",
            r"Foo{a: 1, ?b: optional.of(2)}.a == [?optional.none(), 0x1F][0] % 3 - -9223372036854775808",
        ];
        for rule in rules {
            let chars: Vec<char> = rule.chars().collect();
            for end in 0..=chars.len() {
                let prefix: String = chars[..end].iter().collect();
                let outcome = std::panic::catch_unwind(|| parse(&prefix).is_ok());
                assert!(outcome.is_ok(), "panicked on {prefix:?}");
            }
            assert!(parse(rule).is_ok(), "{rule}");
        }
    }

    fn shape(e: &Expr) -> String {
        match &e.kind {
            Kind::Lit(l) => format!("{l:?}"),
            Kind::Ident(n) => n.clone(),
            Kind::Select {
                operand,
                field,
                test,
            } => {
                format!("{}{}.{field}", if *test { "?" } else { "" }, shape(operand))
            }
            Kind::Call { func, target, args } => format!(
                "{}{func}({})",
                target
                    .as_ref()
                    .map(|t| format!("{}.", shape(t)))
                    .unwrap_or_default(),
                args.iter().map(shape).collect::<Vec<_>>().join(", ")
            ),
            Kind::List(items) => format!(
                "[{}]",
                items.iter().map(shape).collect::<Vec<_>>().join(", ")
            ),
            Kind::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", shape(k), shape(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Kind::Struct { name, .. } => format!("{name}{{}}"),
            Kind::Comp(c) => format!(
                "comp({} in {}; {})",
                c.iter_var,
                shape(&c.range),
                shape(&c.step)
            ),
        }
    }

    fn p(s: &str) -> String {
        shape(&parse(s).unwrap_or_else(|e| panic!("{s}: {e:?}")))
    }

    #[test]
    fn precedence_follows_the_cel_grammar() {
        assert_eq!(
            p("a || b && c == 1 + 2 * 3"),
            "_||_(a, _&&_(b, _==_(c, _+_(Int(1), _*_(Int(2), Int(3))))))"
        );
        assert_eq!(
            p("!a ? -b : c[0].d"),
            "_?_:_(!_(a), -_(b), _[_](c, Int(0)).d)"
        );
        assert_eq!(p("-1 - -2.5"), "_-_(Int(-1), Double(-2.5))");
        assert_eq!(
            p("'a' in ['a', b'b', 1u]"),
            "@in(String(\"a\"), [String(\"a\"), Bytes([98]), Uint(1)])"
        );
    }

    #[test]
    fn macros_expand_like_cel_go() {
        assert_eq!(p("has(self.a)"), "?self.a");
        assert_eq!(
            p("self.all(x, x > 0)"),
            "comp(x in self; _&&_(__result__, _>_(x, Int(0))))"
        );
        assert_eq!(p("self.f(x)"), "self.f(x)");
        // Each comparison in an `&&` chain keeps its own node.
        assert_eq!(p("a && b && c && d"), "_&&_(_&&_(a, b), _&&_(c, d))");
    }

    #[test]
    fn positions_follow_cel_go_tokens() {
        let e = parse("self.config").expect("parses");
        assert_eq!(e.pos, 4);
        let e = parse("self.size() == 1").expect("parses");
        assert_eq!(e.pos, 12);
        assert_eq!(
            display_error("self.config", 4, "undefined field 'config'"),
            "ERROR: <input>:1:5: undefined field 'config'\n | self.config\n | ....^"
        );
    }
}
