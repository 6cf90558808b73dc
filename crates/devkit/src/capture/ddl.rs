//! DDL statements of the binlog: which table they change and how, applied
//! to a tracked table definition so that a control record lists the columns
//! as they are right after the statement (not as they are when the binlog
//! is read, which may be several statements later).
//!
//! The parser reads the statements DMS reports (CREATE/DROP/RENAME TABLE,
//! ALTER TABLE with ADD/DROP/CHANGE/MODIFY/RENAME COLUMN and RENAME TO); a
//! statement it does not understand yields no control record, and the next
//! table map event of the table corrects the tracked definition.

use crate::dms::{ControlOperation, TableName};

use super::render::{string, Object};
use super::schema::{ColumnDef, TableDef};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unquoted word (keyword or identifier).
    Word(String),
    /// A backtick-quoted identifier.
    Quoted(String),
    /// A string literal.
    Str(String),
    /// A number.
    Num(String),
    /// Any other character.
    Punct(char),
}

fn tokenize(sql: &str) -> Vec<Tok> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut open_exec_comments = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-'
            && next == Some('-')
            && chars.get(i + 2).is_none_or(|c| c.is_whitespace())
            || c == '#'
        {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // `/*!50100 ... */` and `/*M!100100 ... */` are executable: keep their content.
            let after = chars.get(i + 2).copied();
            let marker = match (after, chars.get(i + 3).copied()) {
                (Some('!'), _) => Some(i + 3),
                (Some('M'), Some('!')) => Some(i + 4),
                _ => None,
            };
            if let Some(mut j) = marker {
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                open_exec_comments += 1;
                i = j;
            } else {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
        } else if c == '*' && next == Some('/') && open_exec_comments > 0 {
            open_exec_comments -= 1;
            i += 2;
        } else if c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '`' {
                    if chars.get(i + 1) == Some(&'`') {
                        s.push('`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Quoted(s));
        } else if c == '\'' || c == '"' {
            let quote = c;
            let mut s = String::new();
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                if d == '\\' && i + 1 < chars.len() {
                    s.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                if d == quote {
                    if chars.get(i + 1) == Some(&quote) {
                        s.push(quote);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(d);
                i += 1;
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit() {
            let mut s = String::new();
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                s.push(chars[i]);
                i += 1;
            }
            if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
                out.push(Tok::Num(s));
            } else {
                out.push(Tok::Word(s));
            }
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut s = String::new();
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                s.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Word(s));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

fn is_kw(tok: Option<&Tok>, kw: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

fn ident(tok: Option<&Tok>) -> Option<String> {
    match tok {
        Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Some(w.clone()),
        _ => None,
    }
}

/// A cursor over a token slice.
struct Cursor<'a> {
    toks: &'a [Tok],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(toks: &'a [Tok]) -> Self {
        Cursor { toks, i: 0 }
    }

    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.i)
    }

    fn peek_at(&self, n: usize) -> Option<&'a Tok> {
        self.toks.get(self.i + n)
    }

    fn at_kw(&self, kw: &str) -> bool {
        is_kw(self.peek(), kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.at_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        if kws
            .iter()
            .enumerate()
            .all(|(n, kw)| is_kw(self.peek_at(n), kw))
        {
            self.i += kws.len();
            true
        } else {
            false
        }
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<String> {
        let name = ident(self.peek())?;
        self.i += 1;
        Some(name)
    }

    fn table(&mut self, schema: &str) -> Option<TableName> {
        let first = self.ident()?;
        if self.eat_punct('.') {
            let second = self.ident()?;
            Some(TableName::new(first, second))
        } else {
            Some(TableName::new(schema, first))
        }
    }

    fn rest(&self) -> &'a [Tok] {
        &self.toks[self.i.min(self.toks.len())..]
    }

    /// Tokens up to the parenthesis matching the one just eaten; moves past it.
    fn group(&mut self) -> &'a [Tok] {
        let start = self.i;
        let mut depth = 1usize;
        while let Some(t) = self.peek() {
            self.i += 1;
            match t {
                Tok::Punct('(') => depth += 1,
                Tok::Punct(')') => {
                    depth -= 1;
                    if depth == 0 {
                        return &self.toks[start..self.i - 1];
                    }
                }
                _ => {}
            }
        }
        &self.toks[start..]
    }
}

/// Splits tokens at commas outside parentheses.
fn split_top(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth = depth.saturating_sub(1),
            Tok::Punct(',') if depth == 0 => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Where an added or changed column goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Place {
    /// At the end (ADD) or where it was (CHANGE/MODIFY).
    Default,
    /// `FIRST`
    First,
    /// `AFTER column`
    After(String),
}

/// One ALTER TABLE specification.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AlterSpec {
    /// `ADD [COLUMN]`
    AddColumns(Vec<ColumnDef>, Place),
    /// `DROP [COLUMN]`
    DropColumn(String),
    /// `CHANGE old new ...` or `MODIFY name ...`
    Change {
        old: String,
        column: ColumnDef,
        place: Place,
    },
    /// `RENAME COLUMN old TO new`
    RenameColumn { old: String, new: String },
    /// `ADD PRIMARY KEY (...)` (`Some`) or `DROP PRIMARY KEY` (`None`).
    PrimaryKey(Option<Vec<String>>),
    /// `RENAME [TO|AS] table`
    RenameTable(TableName),
    /// Anything that does not change the columns.
    Other,
}

/// A DDL statement that DMS reports as a control record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ddl {
    /// `CREATE TABLE`; `None` when the definition is not spelled out (LIKE, AS SELECT).
    CreateTable {
        table: TableName,
        def: Option<TableDef>,
    },
    /// `DROP TABLE a, b`
    DropTable(Vec<TableName>),
    /// `RENAME TABLE a TO b, c TO d`
    RenameTable(Vec<(TableName, TableName)>),
    /// `ALTER TABLE`
    Alter {
        table: TableName,
        specs: Vec<AlterSpec>,
    },
}

/// Reads a DDL statement; `None` for anything DMS would not report
/// (DML, temporary tables, indexes, users, ...).
pub(crate) fn parse(sql: &str, default_schema: &str) -> Option<Ddl> {
    let toks = tokenize(sql);
    let mut c = Cursor::new(&toks);
    if c.eat_kw("CREATE") {
        c.eat_kws(&["OR", "REPLACE"]);
        if c.at_kw("TEMPORARY") {
            return None;
        }
        if !c.eat_kw("TABLE") {
            return None;
        }
        c.eat_kws(&["IF", "NOT", "EXISTS"]);
        let table = c.table(default_schema)?;
        let def = if c.eat_punct('(') {
            table_body(c.group())
        } else {
            None
        };
        return Some(Ddl::CreateTable { table, def });
    }
    if c.eat_kw("DROP") {
        if c.at_kw("TEMPORARY") || !c.eat_kw("TABLE") {
            return None;
        }
        c.eat_kws(&["IF", "EXISTS"]);
        let mut tables = Vec::new();
        loop {
            tables.push(c.table(default_schema)?);
            if !c.eat_punct(',') {
                break;
            }
        }
        return Some(Ddl::DropTable(tables));
    }
    if c.eat_kw("RENAME") {
        if !c.eat_kw("TABLE") {
            return None;
        }
        let mut pairs = Vec::new();
        loop {
            c.eat_kws(&["IF", "EXISTS"]);
            let from = c.table(default_schema)?;
            if c.eat_kw("WAIT") {
                c.i += 1;
            }
            c.eat_kw("NOWAIT");
            if !c.eat_kw("TO") {
                return None;
            }
            let to = c.table(default_schema)?;
            pairs.push((from, to));
            if !c.eat_punct(',') {
                break;
            }
        }
        return Some(Ddl::RenameTable(pairs));
    }
    if c.eat_kw("ALTER") {
        c.eat_kw("ONLINE");
        c.eat_kw("IGNORE");
        if !c.eat_kw("TABLE") {
            return None;
        }
        c.eat_kws(&["IF", "EXISTS"]);
        let table = c.table(default_schema)?;
        if c.eat_kw("WAIT") {
            c.i += 1;
        }
        c.eat_kw("NOWAIT");
        let specs = split_top(c.rest())
            .into_iter()
            .map(|part| alter_spec(part, default_schema))
            .collect();
        return Some(Ddl::Alter { table, specs });
    }
    None
}

/// The table a DML statement (INSERT, REPLACE, UPDATE, DELETE, LOAD DATA)
/// writes, for statements the binlog carries as text.
pub(crate) fn dml_table(sql: &str, default_schema: &str) -> Option<TableName> {
    let toks = tokenize(sql);
    let mut c = Cursor::new(&toks);
    let skip = [
        "LOW_PRIORITY",
        "DELAYED",
        "HIGH_PRIORITY",
        "QUICK",
        "IGNORE",
        "CONCURRENT",
        "LOCAL",
    ];
    if c.eat_kw("INSERT") || c.eat_kw("REPLACE") || c.eat_kw("UPDATE") || c.eat_kw("DELETE") {
        while skip.iter().any(|w| c.eat_kw(w)) {}
        c.eat_kw("INTO");
        c.eat_kw("FROM");
        return c.table(default_schema);
    }
    if c.eat_kw("LOAD") {
        while c.peek().is_some() && !c.eat_kw("TABLE") {
            c.i += 1;
        }
        return c.table(default_schema);
    }
    None
}

const CONSTRAINT_WORDS: [&str; 11] = [
    "PRIMARY",
    "KEY",
    "INDEX",
    "UNIQUE",
    "CONSTRAINT",
    "FOREIGN",
    "FULLTEXT",
    "SPATIAL",
    "CHECK",
    "PERIOD",
    "SYSTEM",
];

fn is_constraint_start(tok: Option<&Tok>) -> bool {
    CONSTRAINT_WORDS.iter().any(|w| is_kw(tok, w))
}

/// Column names of a `PRIMARY KEY (a, b(10) DESC)` clause, if `toks` is one.
fn primary_key_columns(toks: &[Tok]) -> Option<Vec<String>> {
    let mut c = Cursor::new(toks);
    if c.eat_kw("CONSTRAINT") && !c.at_kw("PRIMARY") {
        c.ident();
    }
    if !c.eat_kws(&["PRIMARY", "KEY"]) {
        return None;
    }
    if c.eat_kw("USING") {
        c.i += 1;
    }
    if !c.eat_punct('(') {
        return None;
    }
    Some(
        split_top(c.group())
            .into_iter()
            .filter_map(|part| ident(part.first()))
            .collect(),
    )
}

fn table_body(toks: &[Tok]) -> Option<TableDef> {
    let mut def = TableDef::default();
    for item in split_top(toks) {
        if is_constraint_start(item.first()) {
            if let Some(pk) = primary_key_columns(item) {
                def.primary_key = pk;
            }
            continue;
        }
        let (column, inline_pk, _) = column_def(item)?;
        if inline_pk {
            def.primary_key = vec![column.name.clone()];
        }
        def.columns.push(column);
    }
    (!def.columns.is_empty()).then_some(def)
}

/// A column definition: the column, whether it declares itself the primary
/// key, and its `FIRST` / `AFTER` placement.
fn column_def(toks: &[Tok]) -> Option<(ColumnDef, bool, Place)> {
    let mut c = Cursor::new(toks);
    let name = c.ident()?;
    let Some(Tok::Word(word)) = c.peek() else {
        return None;
    };
    c.i += 1;
    let mut type_text = word.to_ascii_lowercase();
    if type_text == "double" {
        c.eat_kw("PRECISION");
    }
    if c.eat_punct('(') {
        let args: Vec<String> = c
            .group()
            .iter()
            .map(|t| match t {
                Tok::Str(s) => format!("'{}'", s.replace('\'', "''")),
                Tok::Num(n) | Tok::Word(n) | Tok::Quoted(n) => n.clone(),
                Tok::Punct(p) => p.to_string(),
            })
            .collect();
        type_text = format!("{type_text}({})", args.join(""));
    }
    let json = type_text == "json";
    let mut nullable = true;
    let mut primary = false;
    let mut place = Place::Default;
    let mut depth = 0usize;
    let rest = c.rest();
    let mut i = 0;
    while i < rest.len() {
        let t = &rest[i];
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            Tok::Word(w) => {
                let w = w.to_ascii_uppercase();
                match w.as_str() {
                    "UNSIGNED" if !type_text.ends_with(" unsigned") => {
                        type_text.push_str(" unsigned")
                    }
                    "NOT" if is_kw(rest.get(i + 1), "NULL") => {
                        nullable = false;
                        i += 1;
                    }
                    "NULL" => nullable = true,
                    "DEFAULT" if rest.get(i + 1) == Some(&Tok::Punct('(')) => {}
                    "DEFAULT" | "COMMENT" | "COLLATE" | "CHARSET" => i += 1,
                    "SET" => i += 1,
                    "PRIMARY" if is_kw(rest.get(i + 1), "KEY") => {
                        primary = true;
                        nullable = false;
                        i += 1;
                    }
                    "FIRST" => place = Place::First,
                    "AFTER" => {
                        if let Some(col) = ident(rest.get(i + 1)) {
                            place = Place::After(col);
                        }
                        i += 1;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        i += 1;
    }
    Some((
        ColumnDef {
            name,
            type_text,
            nullable,
            json,
        },
        primary,
        place,
    ))
}

fn alter_spec(toks: &[Tok], schema: &str) -> AlterSpec {
    let mut c = Cursor::new(toks);
    if c.eat_kw("ADD") {
        let explicit = c.eat_kw("COLUMN");
        if !explicit && is_constraint_start(c.peek()) {
            return match primary_key_columns(c.rest()) {
                Some(pk) => AlterSpec::PrimaryKey(Some(pk)),
                None => AlterSpec::Other,
            };
        }
        c.eat_kws(&["IF", "NOT", "EXISTS"]);
        if c.eat_punct('(') {
            let columns: Vec<ColumnDef> = split_top(c.group())
                .into_iter()
                .filter(|part| !is_constraint_start(part.first()))
                .filter_map(|part| column_def(part).map(|(col, _, _)| col))
                .collect();
            return AlterSpec::AddColumns(columns, Place::Default);
        }
        return match column_def(c.rest()) {
            Some((col, _, place)) => AlterSpec::AddColumns(vec![col], place),
            None => AlterSpec::Other,
        };
    }
    if c.eat_kw("DROP") {
        let explicit = c.eat_kw("COLUMN");
        if !explicit {
            if c.eat_kws(&["PRIMARY", "KEY"]) {
                return AlterSpec::PrimaryKey(None);
            }
            if is_constraint_start(c.peek()) || c.at_kw("PARTITION") {
                return AlterSpec::Other;
            }
        }
        c.eat_kws(&["IF", "EXISTS"]);
        return match c.ident() {
            Some(name) => AlterSpec::DropColumn(name),
            None => AlterSpec::Other,
        };
    }
    if c.eat_kw("CHANGE") {
        c.eat_kw("COLUMN");
        c.eat_kws(&["IF", "EXISTS"]);
        let Some(old) = c.ident() else {
            return AlterSpec::Other;
        };
        return match column_def(c.rest()) {
            Some((column, _, place)) => AlterSpec::Change { old, column, place },
            None => AlterSpec::Other,
        };
    }
    if c.eat_kw("MODIFY") {
        c.eat_kw("COLUMN");
        c.eat_kws(&["IF", "EXISTS"]);
        return match column_def(c.rest()) {
            Some((column, _, place)) => AlterSpec::Change {
                old: column.name.clone(),
                column,
                place,
            },
            None => AlterSpec::Other,
        };
    }
    if c.eat_kw("RENAME") {
        if c.eat_kw("COLUMN") {
            c.eat_kws(&["IF", "EXISTS"]);
            let (Some(old), true, Some(new)) = (c.ident(), c.eat_kw("TO"), c.ident()) else {
                return AlterSpec::Other;
            };
            return AlterSpec::RenameColumn { old, new };
        }
        if c.at_kw("INDEX") || c.at_kw("KEY") {
            return AlterSpec::Other;
        }
        if !c.eat_kw("TO") {
            c.eat_kw("AS");
        }
        return match c.table(schema) {
            Some(t) => AlterSpec::RenameTable(t),
            None => AlterSpec::Other,
        };
    }
    AlterSpec::Other
}

fn position_of(def: &TableDef, name: &str) -> Option<usize> {
    def.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
}

fn insert_at(def: &mut TableDef, column: ColumnDef, place: &Place, default: usize) {
    let at = match place {
        Place::Default => default,
        Place::First => 0,
        Place::After(name) => position_of(def, name).map_or(def.columns.len(), |i| i + 1),
    };
    def.columns.insert(at.min(def.columns.len()), column);
}

/// What an ALTER TABLE did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Altered {
    /// The definition after the statement.
    pub def: TableDef,
    /// The control operation of the column changes, if any.
    pub operation: Option<ControlOperation>,
    /// The table's new name, for `RENAME TO`.
    pub renamed: Option<TableName>,
}

/// Applies ALTER TABLE specifications to a definition.
pub(crate) fn apply(def: &TableDef, specs: &[AlterSpec]) -> Altered {
    let mut def = def.clone();
    let mut ops: Vec<ControlOperation> = Vec::new();
    let mut renamed = None;
    let note = |op: ControlOperation, ops: &mut Vec<ControlOperation>| {
        if !ops.contains(&op) {
            ops.push(op);
        }
    };
    for spec in specs {
        match spec {
            AlterSpec::AddColumns(columns, place) => {
                for column in columns {
                    if position_of(&def, &column.name).is_some() {
                        continue;
                    }
                    let end = def.columns.len();
                    insert_at(&mut def, column.clone(), place, end);
                    note(ControlOperation::AddColumn, &mut ops);
                }
            }
            AlterSpec::DropColumn(name) => {
                if let Some(i) = position_of(&def, name) {
                    def.columns.remove(i);
                }
                def.primary_key.retain(|k| !k.eq_ignore_ascii_case(name));
                note(ControlOperation::DropColumn, &mut ops);
            }
            AlterSpec::Change { old, column, place } => {
                let at = match position_of(&def, old) {
                    Some(i) => {
                        def.columns.remove(i);
                        i
                    }
                    None => def.columns.len(),
                };
                insert_at(&mut def, column.clone(), place, at);
                if old.eq_ignore_ascii_case(&column.name) {
                    note(ControlOperation::ChangeColumns, &mut ops);
                } else {
                    for k in def.primary_key.iter_mut() {
                        if k.eq_ignore_ascii_case(old) {
                            *k = column.name.clone();
                        }
                    }
                    note(ControlOperation::RenameColumn, &mut ops);
                }
            }
            AlterSpec::RenameColumn { old, new } => {
                if let Some(i) = position_of(&def, old) {
                    def.columns[i].name = new.clone();
                }
                for k in def.primary_key.iter_mut() {
                    if k.eq_ignore_ascii_case(old) {
                        *k = new.clone();
                    }
                }
                note(ControlOperation::RenameColumn, &mut ops);
            }
            AlterSpec::PrimaryKey(pk) => def.primary_key = pk.clone().unwrap_or_default(),
            AlterSpec::RenameTable(t) => renamed = Some(t.clone()),
            AlterSpec::Other => {}
        }
    }
    let operation = match ops.as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => Some(ControlOperation::ChangeColumns),
    };
    Altered {
        def,
        operation,
        renamed,
    }
}

/// The DMS data type of a column type (`bigint(20) unsigned`, `varchar(200)`,
/// `decimal(4,2)`, ...) with its attributes, as in DMS's table definitions.
fn dms_type(type_text: &str) -> Object {
    let lower = type_text.to_ascii_lowercase();
    let unsigned = lower.contains(" unsigned");
    let base: String = lower
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let args: Vec<String> = lower
        .split_once('(')
        .and_then(|(_, rest)| rest.rsplit_once(')'))
        .map(|(inside, _)| inside.split(',').map(|a| a.trim().to_owned()).collect())
        .unwrap_or_default();
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    let int =
        |signed: &str, uns: &str| Object::new().str("type", if unsigned { uns } else { signed });
    let labels_len = |set: bool| -> u64 {
        let lens = args
            .iter()
            .map(|a| a.trim_matches('\'').chars().count() as u64);
        if set {
            lens.clone().sum::<u64>() + (args.len() as u64).saturating_sub(1)
        } else {
            lens.max().unwrap_or(0)
        }
    };
    match base.as_str() {
        "tinyint" | "bool" | "boolean" => int("INT1", "UINT1"),
        "smallint" => int("INT2", "UINT2"),
        "mediumint" | "int" | "integer" => int("INT4", "UINT4"),
        "bigint" => int("INT8", "UINT8"),
        "decimal" | "numeric" | "dec" | "fixed" => Object::new()
            .str("type", "NUMERIC")
            .raw("precision", &num(0).unwrap_or(10).to_string())
            .raw("scale", &num(1).unwrap_or(0).to_string()),
        "float" => Object::new().str("type", "REAL4"),
        "double" | "real" => Object::new().str("type", "REAL8"),
        "date" => Object::new().str("type", "DATE"),
        "time" => Object::new().str("type", "TIME"),
        "datetime" | "timestamp" => Object::new()
            .str("type", "DATETIME")
            .raw("scale", &num(0).unwrap_or(0).to_string()),
        "year" => Object::new().str("type", "INT2"),
        "char" | "varchar" => Object::new()
            .str("type", "WSTRING")
            .raw("length", &num(0).unwrap_or(1).to_string()),
        "binary" | "varbinary" => Object::new()
            .str("type", "BYTES")
            .raw("length", &num(0).unwrap_or(1).to_string()),
        "bit" => Object::new()
            .str("type", "BYTES")
            .raw("length", &num(0).unwrap_or(1).div_ceil(8).to_string()),
        "tinytext" => Object::new().str("type", "WSTRING").raw("length", "255"),
        "tinyblob" => Object::new().str("type", "BYTES").raw("length", "255"),
        "text" | "mediumtext" | "longtext" | "json" => Object::new().str("type", "NCLOB"),
        "enum" => Object::new()
            .str("type", "WSTRING")
            .raw("length", &labels_len(false).to_string()),
        "set" => Object::new()
            .str("type", "WSTRING")
            .raw("length", &labels_len(true).to_string()),
        "blob" | "mediumblob" | "longblob" => Object::new().str("type", "BLOB"),
        _ => Object::new().str("type", "BLOB"),
    }
}

/// `{"table-def": {"columns": {...}, "primary-key": [...]}}`, DMS's control detail.
pub(crate) fn control_json(def: Option<&TableDef>, extra: &[(&str, String)]) -> String {
    let mut control = Object::new();
    if let Some(def) = def {
        let columns = def
            .columns
            .iter()
            .fold(Object::new(), |o, c| {
                let attrs = dms_type(&c.type_text)
                    .raw("nullable", if c.nullable { "true" } else { "false" })
                    .finish();
                o.raw(&c.name, &attrs)
            })
            .finish();
        let pk = format!(
            "[{}]",
            def.primary_key
                .iter()
                .map(|k| string(k))
                .collect::<Vec<_>>()
                .join(",")
        );
        let table_def = Object::new()
            .raw("columns", &columns)
            .raw("primary-key", &pk)
            .finish();
        control = control.raw("table-def", &table_def);
    }
    for (key, value) in extra {
        control = control.raw(key, value);
    }
    control.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, type_text: &str, nullable: bool) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            type_text: type_text.into(),
            nullable,
            json: type_text == "json",
        }
    }

    #[test]
    fn parses_alter_statements() {
        let Some(Ddl::Alter { table, specs }) = parse(
            "ALTER TABLE recipes ADD COLUMN difficulty VARCHAR(20) NULL AFTER title, DROP INDEX x, MODIFY `servings` bigint(20) unsigned NOT NULL DEFAULT 1",
            "recipes_src",
        ) else {
            panic!("not an alter");
        };
        assert_eq!(table, TableName::new("recipes_src", "recipes"));
        assert_eq!(
            specs,
            vec![
                AlterSpec::AddColumns(
                    vec![col("difficulty", "varchar(20)", true)],
                    Place::After("title".into())
                ),
                AlterSpec::Other,
                AlterSpec::Change {
                    old: "servings".into(),
                    column: col("servings", "bigint(20) unsigned", false),
                    place: Place::Default
                },
            ]
        );
        assert_eq!(
            parse("alter table s.t drop column c", "x"),
            Some(Ddl::Alter {
                table: TableName::new("s", "t"),
                specs: vec![AlterSpec::DropColumn("c".into())]
            })
        );
        assert_eq!(
            parse("ALTER TABLE t RENAME COLUMN a TO b, RENAME TO u", "s"),
            Some(Ddl::Alter {
                table: TableName::new("s", "t"),
                specs: vec![
                    AlterSpec::RenameColumn {
                        old: "a".into(),
                        new: "b".into()
                    },
                    AlterSpec::RenameTable(TableName::new("s", "u"))
                ]
            })
        );
    }

    #[test]
    fn parses_table_statements() {
        let Some(Ddl::CreateTable { table, def }) = parse(
            "CREATE TABLE IF NOT EXISTS `r` (\n  id BIGINT NOT NULL, -- the key\n  stars TINYINT NOT NULL, note JSON, e ENUM('a','bb') DEFAULT 'a',\n  PRIMARY KEY (id), KEY k (stars)\n) ENGINE=InnoDB /*!50100 COMMENT 'x' */",
            "s",
        ) else {
            panic!("not a create");
        };
        assert_eq!(table, TableName::new("s", "r"));
        let def = def.unwrap();
        assert_eq!(def.primary_key, vec!["id".to_owned()]);
        assert_eq!(
            def.columns,
            vec![
                col("id", "bigint", false),
                col("stars", "tinyint", false),
                col("note", "json", true),
                col("e", "enum('a','bb')", true),
            ]
        );
        assert_eq!(
            parse(
                "DROP TABLE IF EXISTS `a`,b.c /* generated by server */",
                "s"
            ),
            Some(Ddl::DropTable(vec![
                TableName::new("s", "a"),
                TableName::new("b", "c")
            ]))
        );
        assert_eq!(
            parse("RENAME TABLE a TO b", "s"),
            Some(Ddl::RenameTable(vec![(
                TableName::new("s", "a"),
                TableName::new("s", "b")
            )]))
        );
        assert_eq!(parse("CREATE TEMPORARY TABLE t (a int)", "s"), None);
        assert_eq!(parse("CREATE INDEX i ON t (a)", "s"), None);
        assert_eq!(parse("INSERT INTO t VALUES (1)", "s"), None);
        assert_eq!(
            dml_table("INSERT IGNORE INTO `t` VALUES (1)", "s"),
            Some(TableName::new("s", "t"))
        );
        assert_eq!(
            dml_table("DELETE FROM x.y WHERE 1", "s"),
            Some(TableName::new("x", "y"))
        );
        assert_eq!(
            dml_table("LOAD DATA LOCAL INFILE 'f' INTO TABLE t", "s"),
            Some(TableName::new("s", "t"))
        );
        assert_eq!(dml_table("GRANT ALL ON *.* TO x", "s"), None);
    }

    #[test]
    fn applies_column_changes() {
        let def = TableDef {
            columns: vec![
                col("id", "bigint", false),
                col("title", "varchar(200)", false),
            ],
            primary_key: vec!["id".into()],
        };
        let Some(Ddl::Alter { specs, .. }) =
            parse("ALTER TABLE t ADD COLUMN d VARCHAR(20) FIRST", "s")
        else {
            panic!()
        };
        let a = apply(&def, &specs);
        assert_eq!(a.operation, Some(ControlOperation::AddColumn));
        assert_eq!(a.def.columns[0].name, "d");
        let Some(Ddl::Alter { specs, .. }) =
            parse("ALTER TABLE t CHANGE id key_id bigint NOT NULL", "s")
        else {
            panic!()
        };
        let b = apply(&a.def, &specs);
        assert_eq!(b.operation, Some(ControlOperation::RenameColumn));
        assert_eq!(b.def.primary_key, vec!["key_id".to_owned()]);
        assert_eq!(b.def.columns[1].name, "key_id");
        let Some(Ddl::Alter { specs, .. }) = parse("ALTER TABLE t DROP d, ADD e int", "s") else {
            panic!()
        };
        let c = apply(&b.def, &specs);
        assert_eq!(c.operation, Some(ControlOperation::ChangeColumns));
        let json = control_json(Some(&c.def), &[]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["table-def"]["columns"]["title"],
            serde_json::json!({"type": "WSTRING", "length": 200, "nullable": false})
        );
        assert_eq!(v["table-def"]["columns"]["e"]["type"], "INT4");
        assert_eq!(v["table-def"]["primary-key"], serde_json::json!(["key_id"]));
    }
}
