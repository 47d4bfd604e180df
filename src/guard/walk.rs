//! The walk over the parse tree that decides whether one statement is a plain read.
//!
//! It is complete by construction: the tree (pg_query's protobuf types, which all derive `Serialize`) is
//! turned into a generic JSON value and *every* object in it is visited, instead of a hand-written list of
//! places where calls or subqueries are expected. A `Node` (PostgreSQL's tagged union) shows up as
//! `{"node": {"<Kind>": {…}}}`; each kind is either checked (function calls, relations, TABLESAMPLE
//! methods, qualified names), refused (statements, locks, INTO), or on the list of kinds a plain read can
//! contain. Any other kind is refused, so a construct the guard does not know fails closed.
//!
//! pg_query's own `nodes()` is not used: it skips node types on purpose ("we only care about a subset").

use pg_query::protobuf::RawStmt;
use serde_json::{Map, Value};

use super::dependence::{self, Dependence, Tracker};
use super::{FunctionPolicy, GuardError, char_position, relations};

/// A bound on the walk's recursion. prost already refuses trees more than 100 messages deep, which keeps the
/// JSON a few hundred levels deep at most; this only makes the bound local.
const MAX_DEPTH: usize = 4_000;

/// Checks the one statement of the text; returns whether it is an EXPLAIN, and what its result depends on.
pub(crate) fn check_statement(
    sql: &str,
    raw: &RawStmt,
    policy: &FunctionPolicy,
) -> Result<(bool, Dependence), GuardError> {
    let tree = serde_json::to_value(&raw.stmt).map_err(|e| GuardError::Unparseable { reason: e.to_string() })?;
    let walker = Walker { sql, policy, dependence: Tracker::new(policy) };
    match tagged(&tree) {
        None => Err(GuardError::Empty),
        Some(("SelectStmt", _)) => walker.visit(&tree, -1, 0).map(|()| (false, walker.dependence.finish())),
        Some(("ExplainStmt", explain)) => {
            let target = explain.get("query").unwrap_or(&Value::Null);
            match tagged(target) {
                Some(("SelectStmt", _)) => {}
                Some((kind, body)) => return Err(statement_refusal(kind, body, None)),
                None => return Err(GuardError::Unsupported { construct: "EXPLAIN".into(), position: None }),
            }
            check_explain_options(explain.get("options"))?;
            walker.dependence.note(dependence::PLAN);
            walker.visit(target, -1, 0).map(|()| (true, walker.dependence.finish()))
        }
        Some((kind, body)) => Err(statement_refusal(kind, body, None)),
    }
}

struct Walker<'a> {
    sql: &'a str,
    policy: &'a FunctionPolicy,
    dependence: Tracker<'a>,
}

impl Walker<'_> {
    /// Visits `value` and everything below it. `loc` is the byte offset of the nearest enclosing node that
    /// has one (-1 if none), so that refusals of nodes without a location still point somewhere useful.
    fn visit(&self, value: &Value, loc: i64, depth: usize) -> Result<(), GuardError> {
        if depth > MAX_DEPTH {
            return Err(GuardError::TooComplex);
        }
        match value {
            Value::Array(items) => items.iter().try_for_each(|item| self.visit(item, loc, depth + 1)),
            Value::Object(fields) => {
                if let Some(node) = node_field(fields) {
                    let Some((kind, body)) = single_entry(node) else {
                        return if node.is_null() { Ok(()) } else { Err(self.unsupported("an unknown node", loc)) };
                    };
                    let loc = location(body).unwrap_or(loc);
                    self.check_node(kind, body, loc)?;
                    self.dependence.observe(kind, body, names);
                    return self.visit(body, loc, depth + 1);
                }
                // `SelectStmt.into_clause` is a typed field, not a `Node`, so it is caught by its key.
                if fields.get("into_clause").is_some_and(|into| !into.is_null()) {
                    return Err(GuardError::SelectInto { position: char_position(self.sql, loc) });
                }
                let loc = location(value).unwrap_or(loc);
                fields.values().try_for_each(|child| self.visit(child, loc, depth + 1))
            }
            _ => Ok(()),
        }
    }

    fn check_node(&self, kind: &str, body: &Value, loc: i64) -> Result<(), GuardError> {
        // Computed only for a refusal: counting characters for every node would make the walk quadratic.
        let position = || char_position(self.sql, loc);
        match kind {
            "FuncCall" => {
                let names = names(body.get("funcname"));
                let Some((name, qualifiers)) = names.split_last() else { return Ok(()) };
                self.policy.check(qualifiers.last().map(String::as_str), name).map_err(|reason| {
                    GuardError::ForbiddenFunction { name: names.join("."), reason, position: position() }
                })
            }
            "RangeVar" => {
                let part = |key| body.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
                let (schema, relation) = (part("schemaname"), part("relname").unwrap_or_default());
                match relations::refusal(schema, relation) {
                    None => Ok(()),
                    Some(reason) => {
                        let name = [part("catalogname"), schema, Some(relation)].into_iter().flatten();
                        Err(GuardError::ForbiddenRelation {
                            name: name.collect::<Vec<_>>().join("."),
                            reason,
                            position: position(),
                        })
                    }
                }
            }
            "RangeTableSample" => {
                let method = names(body.get("method"));
                let sampler = |name: &String| ["system", "bernoulli"].iter().any(|m| name.eq_ignore_ascii_case(m));
                let builtin = match method.as_slice() {
                    [name] => sampler(name),
                    [schema, name] => schema.eq_ignore_ascii_case("pg_catalog") && sampler(name),
                    _ => false,
                };
                if builtin {
                    Ok(())
                } else {
                    Err(GuardError::TableSample { method: method.join("."), position: position() })
                }
            }
            // Qualified names that could point into an internal schema: `OPERATOR(s.op)`, `s.t.column`,
            // casts to `s.type`. The relation or function behind them is checked where it is named.
            // An operator runs its implementing function: `x op y`, `ORDER BY x USING op`, `x op ANY (…)`.
            "AExpr" => self.operator(&names(body.get("name")), position),
            "SortBy" => self.operator(&names(body.get("use_op")), position),
            "SubLink" => self.operator(&names(body.get("oper_name")), position),
            // Attribute notation: in `a.b.f` every part after the first may be PostgreSQL's call `f(a.b)`.
            "ColumnRef" => {
                let fields = names(body.get("fields"));
                internal_schema(&fields, 3, position)?;
                self.fields(&fields, fields.iter().skip(1), position)
            }
            // `(expr).f`, `(expr)[1].f`: every field name of the indirection may be a call `f(expr)`.
            "AIndirection" => {
                let parts = names(body.get("indirection"));
                self.fields(&parts, parts.iter(), position)
            }
            // A cast runs the target type's input function or a cast function into it.
            "TypeCast" | "ColumnDef" => {
                let type_name = names(body.get("type_name").and_then(|t| t.get("names")));
                internal_schema(&type_name, 2, position)?;
                let Some(target) = type_name.last() else { return Ok(()) };
                self.policy.check_cast(target).map_err(|reason| GuardError::ForbiddenFunction {
                    name: format!("CAST(… AS {})", type_name.join(".")),
                    reason,
                    position: position(),
                })
            }
            "LockingClause" => Err(GuardError::Locking { clause: lock_strength(body), position: position() }),
            "IntoClause" => Err(GuardError::SelectInto { position: position() }),
            "SelectStmt" => Ok(()),
            kind if kind.ends_with("Stmt") => Err(statement_refusal(kind, body, position())),
            kind if is_read_node(kind) => Ok(()),
            kind => Err(self.unsupported(kind, loc)),
        }
    }

    /// Checks the field names of a column reference or indirection (`*` and subscripts are not names).
    fn fields<'n>(
        &self,
        all: &[String],
        candidates: impl Iterator<Item = &'n String>,
        position: impl Fn() -> Option<usize>,
    ) -> Result<(), GuardError> {
        for name in candidates.filter(|n| *n != "*") {
            self.policy.check_field(name).map_err(|reason| GuardError::ForbiddenFunction {
                name: all.join("."),
                reason,
                position: position(),
            })?;
        }
        Ok(())
    }

    /// Checks an operator name (`+`, or `OPERATOR(schema.+)`), if there is one.
    fn operator(&self, name: &[String], position: impl Fn() -> Option<usize>) -> Result<(), GuardError> {
        internal_schema(name, 2, &position)?;
        let Some(operator) = name.last() else { return Ok(()) };
        self.policy.check_operator(operator).map_err(|reason| GuardError::ForbiddenFunction {
            name: format!("OPERATOR({})", name.join(".")),
            reason,
            position: position(),
        })
    }

    fn unsupported(&self, construct: &str, loc: i64) -> GuardError {
        GuardError::Unsupported { construct: construct.to_owned(), position: char_position(self.sql, loc) }
    }
}

/// Node kinds a plain read can contain, besides those `check_node` inspects. Everything else is refused.
fn is_read_node(kind: &str) -> bool {
    matches!(
        kind,
        // clauses
        "WithClause" | "CommonTableExpr" | "CtesearchClause" | "CtecycleClause" | "ResTarget" | "SortBy"
            | "WindowDef" | "GroupingSet"
            // FROM items
            | "RangeSubselect" | "RangeFunction" | "RangeTableFunc" | "RangeTableFuncCol" | "JoinExpr" | "Alias"
            // expressions
            | "ParamRef" | "AConst" | "AStar" | "AIndices" | "AIndirection" | "AArrayExpr" | "TypeName"
            | "CollateClause" | "NamedArgExpr" | "BoolExpr" | "SubLink" | "CaseExpr" | "CaseWhen" | "NullTest"
            | "BooleanTest" | "RowExpr" | "CoalesceExpr" | "MinMaxExpr" | "SqlvalueFunction" | "XmlExpr"
            | "XmlSerialize" | "GroupingFunc"
            // SQL/JSON
            | "JsonFormat" | "JsonReturning" | "JsonValueExpr" | "JsonOutput" | "JsonArgument" | "JsonFuncExpr"
            | "JsonTablePathSpec" | "JsonTable" | "JsonTableColumn" | "JsonKeyValue" | "JsonParseExpr"
            | "JsonScalarExpr" | "JsonSerializeExpr" | "JsonObjectConstructor" | "JsonArrayConstructor"
            | "JsonArrayQueryConstructor" | "JsonAggConstructor" | "JsonObjectAgg" | "JsonArrayAgg"
            | "JsonIsPredicate" | "JsonBehavior"
            // values
            | "Integer" | "Float" | "Boolean" | "String" | "BitString" | "List"
    )
}

/// `EXPLAIN ANALYZE` executes its statement. It passes only when switched off explicitly, in a spelling
/// PostgreSQL reads as false (`false`/`off`, any case, or `0`); any other value, or none, means on.
fn check_explain_options(options: Option<&Value>) -> Result<(), GuardError> {
    for option in options.and_then(Value::as_array).into_iter().flatten() {
        let Some(("DefElem", def)) = tagged(option) else { continue };
        let name = def.get("defname").and_then(Value::as_str).unwrap_or_default();
        if name.eq_ignore_ascii_case("analyze") && !is_explicitly_false(def.get("arg")) {
            return Err(GuardError::ExplainAnalyze);
        }
    }
    Ok(())
}

fn is_explicitly_false(arg: Option<&Value>) -> bool {
    match arg.and_then(tagged) {
        Some(("String", s)) => s
            .get("sval")
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("false") || v.eq_ignore_ascii_case("off")),
        Some(("Integer", i)) => i.get("ival").and_then(Value::as_i64) == Some(0),
        Some(("Boolean", b)) => b.get("boolval").and_then(Value::as_bool) == Some(false),
        _ => false,
    }
}

fn statement_refusal(kind: &str, body: &Value, position: Option<usize>) -> GuardError {
    let keyword = keyword(kind, body);
    match kind {
        "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
            GuardError::DataModifying { kind: keyword, position }
        }
        _ => GuardError::NotARead { kind: keyword, hint: hint(kind), position },
    }
}

/// What the model should do instead of a statement that is not a query.
fn hint(kind: &str) -> &'static str {
    match kind {
        "VariableShowStmt" => "To read a setting, use `SELECT current_setting('name')`.",
        "TransactionStmt" => "Each call already runs in its own read-only transaction: send only the SELECT.",
        "VariableSetStmt" | "DiscardStmt" => "Settings cannot be changed: send only the SELECT.",
        "DeclareCursorStmt" | "FetchStmt" | "ClosePortalStmt" | "PrepareStmt" | "ExecuteStmt" | "DeallocateStmt" => {
            "Cursors and prepared statements are not available: send the SELECT itself (results are capped)."
        }
        "CreateTableAsStmt" | "CreateStmt" | "ViewStmt" => {
            "Nothing can be created: return the rows with a SELECT (a CTE can hold intermediate results)."
        }
        _ => "Send a single SELECT (or EXPLAIN SELECT) instead.",
    }
}

/// The SQL a statement node was written as, for messages: `DeleteStmt` → `DELETE`.
fn keyword(kind: &str, body: &Value) -> String {
    let flag = |key| body.get(key).and_then(Value::as_bool).unwrap_or(false);
    let number = body.get("kind").and_then(Value::as_i64).unwrap_or(0);
    let words = match kind {
        "InsertStmt" => "INSERT",
        "UpdateStmt" => "UPDATE",
        "DeleteStmt" => "DELETE",
        "MergeStmt" => "MERGE",
        "VariableSetStmt" if matches!(number, 5 | 6) => "RESET",
        "VariableSetStmt" if flag("is_local") => "SET LOCAL",
        "VariableSetStmt" => "SET",
        "VariableShowStmt" => "SHOW",
        "TransactionStmt" => match number {
            1 => "BEGIN",
            2 => "START TRANSACTION",
            3 => "COMMIT",
            4 => "ROLLBACK",
            5 => "SAVEPOINT",
            6 => "RELEASE SAVEPOINT",
            7 => "ROLLBACK TO SAVEPOINT",
            8 => "PREPARE TRANSACTION",
            9 => "COMMIT PREPARED",
            10 => "ROLLBACK PREPARED",
            _ => "transaction control",
        },
        "VacuumStmt" if flag("is_vacuumcmd") => "VACUUM",
        "VacuumStmt" => "ANALYZE",
        "FetchStmt" if flag("ismove") => "MOVE",
        "FetchStmt" => "FETCH",
        "GrantStmt" | "GrantRoleStmt" if flag("is_grant") => "GRANT",
        "GrantStmt" | "GrantRoleStmt" => "REVOKE",
        "CopyStmt" => "COPY",
        "DoStmt" => "DO",
        "CallStmt" => "CALL",
        "ExplainStmt" => "EXPLAIN",
        "LockStmt" => "LOCK",
        "DeclareCursorStmt" => "DECLARE CURSOR",
        "ClosePortalStmt" => "CLOSE",
        "CreateStmt" => "CREATE TABLE",
        "CreateTableAsStmt" => "CREATE TABLE AS",
        "ViewStmt" => "CREATE VIEW",
        "IndexStmt" => "CREATE INDEX",
        "CreateFunctionStmt" => "CREATE FUNCTION",
        "RefreshMatViewStmt" => "REFRESH MATERIALIZED VIEW",
        "ConstraintsSetStmt" => "SET CONSTRAINTS",
        "SecLabelStmt" => "SECURITY LABEL",
        "RenameStmt" => "ALTER … RENAME",
        "RuleStmt" => "CREATE RULE",
        "CreatedbStmt" => "CREATE DATABASE",
        "DropdbStmt" => "DROP DATABASE",
        "CreateTrigStmt" => "CREATE TRIGGER",
        "CheckPointStmt" => "CHECKPOINT",
        _ => return camel_to_words(kind.trim_end_matches("Stmt")),
    };
    words.to_owned()
}

/// `AlterTableSpaceOptions` → `ALTER TABLE SPACE OPTIONS`: good enough for the statements not named above.
fn camel_to_words(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn lock_strength(body: &Value) -> &'static str {
    match body.get("strength").and_then(Value::as_i64) {
        Some(2) => "FOR KEY SHARE",
        Some(3) => "FOR SHARE",
        Some(4) => "FOR NO KEY UPDATE",
        _ => "FOR UPDATE",
    }
}

/// Refuses a qualified name whose schema part (`parts` long or longer, schema at `len - parts`) is internal.
fn internal_schema(names: &[String], parts: usize, position: impl Fn() -> Option<usize>) -> Result<(), GuardError> {
    match names.len().checked_sub(parts).and_then(|i| names.get(i)) {
        Some(schema) if relations::is_internal_schema(&schema.to_ascii_lowercase()) => {
            Err(GuardError::ForbiddenSchema { schema: schema.clone(), position: position() })
        }
        _ => Ok(()),
    }
}

/// The strings of a list of `String` nodes (a qualified name); other items (`*`) become `*`.
fn names(list: Option<&Value>) -> Vec<String> {
    let items = list.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .map(|item| match tagged(item) {
            Some(("String", s)) => s.get("sval").and_then(Value::as_str).unwrap_or_default().to_owned(),
            _ => "*".to_owned(),
        })
        .collect()
}

/// `{"node": {"Kind": body}}` → (Kind, body).
fn tagged(value: &Value) -> Option<(&str, &Value)> {
    value.as_object().and_then(node_field).and_then(single_entry)
}

/// The content of a `Node` wrapper: the only struct whose one and only field is `node`.
fn node_field(fields: &Map<String, Value>) -> Option<&Value> {
    if fields.len() == 1 { fields.get("node") } else { None }
}

fn single_entry(value: &Value) -> Option<(&str, &Value)> {
    let object = value.as_object().filter(|o| o.len() == 1)?;
    object.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn location(body: &Value) -> Option<i64> {
    body.get("location").and_then(Value::as_i64).filter(|&l| l >= 0)
}
