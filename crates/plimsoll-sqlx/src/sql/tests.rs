//! The reader on real statements, and shapes.

use super::*;

#[track_caller]
fn check(sql: &str, operation: Operation, table: Option<&str>) {
    let parsed = parse(sql);
    assert_eq!(
        (parsed.operation, parsed.table.as_deref()),
        (operation, table),
        "{sql}"
    );
}

#[test]
fn reads_operation_and_table_of_real_statements() {
    use Operation::*;
    check(
        "SELECT id, total FROM orders WHERE id = $1",
        Select,
        Some("orders"),
    );
    check(
        "select * from Orders o join customers c on c.id = o.customer_id",
        Select,
        Some("orders"),
    );
    check("SELECT * FROM public.orders", Select, Some("orders"));
    check(
        r#"SELECT * FROM "public"."Order Lines""#,
        Select,
        Some("Order Lines"),
    );
    check(r#"SELECT * FROM "we""ird""#, Select, Some("we\"ird"));
    check("SELECT * FROM `orders`", Select, Some("orders"));
    check("SELECT * FROM [order items]", Select, Some("order items"));
    check(
        "INSERT INTO orders (tenant, total) VALUES (?, ?)",
        Insert,
        Some("orders"),
    );
    check(
        "insert or replace into kv(k, v) values (?1, ?2)",
        Insert,
        Some("kv"),
    );
    check("REPLACE INTO kv VALUES ('a', 1)", Insert, Some("kv"));
    check(
        "INSERT INTO archive SELECT * FROM orders",
        Insert,
        Some("archive"),
    );
    check(
        "UPDATE orders SET total = total + 1 WHERE id = $1",
        Update,
        Some("orders"),
    );
    check(
        "UPDATE ONLY billing.invoices SET paid = true",
        Update,
        Some("invoices"),
    );
    check("UPDATE OR IGNORE kv SET v = 2", Update, Some("kv"));
    check(
        "DELETE FROM sessions WHERE expires < now()",
        Delete,
        Some("sessions"),
    );
    check("DELETE FROM ONLY sessions", Delete, Some("sessions"));
    check("TABLE orders", Select, Some("orders"));
    check("VALUES (1), (2)", Select, None);
    check("SELECT 1", Select, None);
    check("SELECT now()", Select, None);
    check("BEGIN", Other, None);
    check("PRAGMA journal_mode = WAL", Other, None);
    check("CREATE TABLE orders (id INTEGER PRIMARY KEY)", Other, None);
    check("", Other, None);
    check("   -- only a comment\n", Other, None);
}

#[test]
fn common_table_expressions_are_looked_through() {
    use Operation::*;
    check(
        "WITH recent AS (SELECT * FROM orders WHERE at > $1) SELECT count(*) FROM recent",
        Select,
        Some("orders"),
    );
    check(
        "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent JOIN customers c ON true",
        Select,
        Some("customers"),
    );
    check(
        "WITH RECURSIVE tree(id, parent) AS (SELECT id, parent FROM nodes UNION ALL SELECT n.id, n.parent FROM nodes n JOIN tree t ON n.parent = t.id) SELECT * FROM tree",
        Select,
        Some("nodes"),
    );
    check(
        "WITH moved AS (DELETE FROM queue WHERE id = $1 RETURNING *) INSERT INTO done SELECT * FROM moved",
        Insert,
        Some("done"),
    );
    check(
        "with a as materialized (select 1), b as not materialized (select * from b_src) update target set x = 1",
        Update,
        Some("target"),
    );
}

#[test]
fn comments_literals_and_functions_do_not_mislead() {
    use Operation::*;
    check(
        "/* from nowhere */ SELECT 'FROM fake' FROM real_one",
        Select,
        Some("real_one"),
    );
    check("-- DELETE FROM x\nSELECT * FROM y", Select, Some("y"));
    check(
        "/* outer /* nested */ still comment FROM z */ SELECT * FROM t",
        Select,
        Some("t"),
    );
    check(
        "SELECT EXTRACT(YEAR FROM created_at) FROM orders",
        Select,
        Some("orders"),
    );
    check(
        "SELECT substring(name FROM 2 FOR 3) AS s FROM people",
        Select,
        Some("people"),
    );
    check(
        "SELECT * FROM (SELECT * FROM inner_t) sub",
        Select,
        Some("inner_t"),
    );
    check(
        "SELECT $$ FROM dollar $$, $tag$ FROM x $tag$ FROM t",
        Select,
        Some("t"),
    );
    check(r"SELECT E'it\'s FROM x' FROM t", Select, Some("t"));
    check(
        "SELECT * FROM orders o, LATERAL (SELECT 1) x",
        Select,
        Some("orders"),
    );
    check(
        "SELECT * FROM (VALUES (1)) v JOIN t ON true",
        Select,
        Some("t"),
    );
}

#[test]
fn only_the_first_statement_counts() {
    use Operation::*;
    check("SELECT * FROM a; DELETE FROM b", Select, Some("a"));
    check("; ; UPDATE c SET x = 1; SELECT 1", Update, Some("c"));
    check(
        "DELETE FROM d WHERE note = 'a;b'; SELECT 1",
        Delete,
        Some("d"),
    );
}

#[test]
fn unterminated_and_odd_text_never_panics() {
    for sql in [
        "SELECT '",
        "SELECT \"",
        "SELECT /* ",
        "SELECT $a$ ",
        "SELECT [",
        "WITH",
        "WITH x",
        "WITH x AS (",
        "UPDATE",
        "UPDATE OR",
        "SELECT * FROM",
        "SELECT * FROM a.",
        "DELETE FROM ONLY",
        "SELECT ((((",
        "))))",
        "SELECT 'é' FROM tàble",
        "€ FROM €",
        "SELECT 1e-5, .5, 0x1F FROM t",
        "$",
        "$1",
        "?",
        ":",
        "@",
    ] {
        let _ = parse(sql);
        let _ = shape(sql);
    }
    check("SELECT * FROM tàble", Operation::Select, Some("tàble"));
}

#[test]
fn long_names_are_cut_at_a_character_boundary() {
    let long = "é".repeat(40);
    let cut = truncate_table(&long);
    assert!(cut.len() <= MAX_TABLE_LEN && long.starts_with(cut) && cut.len() == 62);
    assert_eq!(truncate_table("orders"), "orders");
}

#[test]
fn shapes_keep_no_literal() {
    assert_eq!(
        shape("INSERT INTO t (a, b) VALUES ('secret', 42), ($1, ?2) -- note\n"),
        "INSERT INTO t (a, b) VALUES (?, ?), ($1, ?2)"
    );
    assert_eq!(
        shape(
            "SELECT x.y FROM \"T\" WHERE z = E'a\\'b' AND w = $q$hidden$q$ AND v IN (1, 2.5, -3)"
        ),
        "SELECT x.y FROM \"T\" WHERE z = ? AND w = ? AND v IN (?, ?, - ?)"
    );
    let long = format!("SELECT {} FROM t", "a, ".repeat(1000));
    let cut = shape(&long);
    assert!(cut.len() <= MAX_SHAPE_LEN + '…'.len_utf8() && cut.ends_with('…'));
}

#[test]
fn an_unterminated_quote_ending_in_a_wide_character_does_not_panic() {
    check("SELECT * FROM \"é", Operation::Select, Some("é"));
    check("SELECT * FROM `ü", Operation::Select, Some("ü"));
    check("SELECT * FROM [ß", Operation::Select, Some("ß"));
    let _ = shape("SELECT * FROM \"é");
}

#[test]
fn a_table_of_the_statement_itself_beats_one_in_a_subquery() {
    check(
        "SELECT (SELECT count(*) FROM orders o WHERE o.customer = c.id) AS n FROM customers c",
        Operation::Select,
        Some("customers"),
    );
    check(
        "SELECT * FROM (SELECT * FROM inner_t) sub",
        Operation::Select,
        Some("inner_t"),
    );
}

#[test]
fn mysql_literals_stay_out_of_the_shape() {
    let sql = "SELECT * FROM t WHERE a = 'O\\'Brien' AND b = \"secret\" # note\n AND c = 1";
    assert_eq!(
        shape_in(sql, Dialect::MySql),
        "SELECT * FROM t WHERE a = ? AND b = ? AND c = ?"
    );
    assert_eq!(parse_in(sql, Dialect::MySql).table.as_deref(), Some("t"));
    assert_eq!(Dialect::of("MySQL"), Dialect::MySql);
    assert_eq!(Dialect::of("PostgreSQL"), Dialect::Standard);
}
