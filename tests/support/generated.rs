//! A generated source for the lifecycle tests and bench (`fixtures/source.sql`
//! schema, MariaDB's sequence tables): `users` users; `recipes` recipes, a
//! quarter of them drafts and a quarter archived, by author `1 + id % users`,
//! with a story for every even id and two ingredients each. Written outside
//! the binlog: it is there before the stream starts.

/// The SQL that fills the source.
pub fn source_sql(users: u64, recipes: u64) -> String {
    format!(
        "SET sql_log_bin = 0;
         INSERT INTO users SELECT seq, CONCAT('user ', seq), CONCAT('U', seq, '@Example.com'), '2026-01-02 03:04:05', 1
           FROM seq_1_to_{users};
         INSERT INTO recipes (id, author_id, title, status, servings, rating, created_at, tags)
           SELECT seq, 1 + seq % {users}, CONCAT('recipe ', seq), ELT(1 + seq % 4, 'draft', 'published', 'published', 'archived'),
                  seq % 8, (seq % 500) / 100, '2026-03-29 01:30:00', CONCAT('[\"t', seq, '\"]')
           FROM seq_1_to_{recipes};
         INSERT INTO recipe_stories SELECT seq, CONCAT('story ', seq) FROM seq_1_to_{recipes} WHERE seq % 2 = 0;
         INSERT INTO ingredients SELECT seq, 1 + (seq - 1) DIV 2, seq % 2, CONCAT('ingredient ', seq), 1.50, 'g'
           FROM seq_1_to_{};
         SET sql_log_bin = 1;",
        recipes * 2
    )
}

/// The rows of [`source_sql`] in a PostgreSQL source (`fixtures/source-postgres.sql`).
#[allow(dead_code)]
pub fn source_sql_postgres(users: u64, recipes: u64) -> String {
    format!(
        "SET search_path TO recipes_src;
         INSERT INTO users SELECT seq, 'user ' || seq, 'U' || seq || '@Example.com', '2026-01-02 03:04:05', true
           FROM generate_series(1, {users}) seq;
         INSERT INTO recipes (id, author_id, title, status, servings, rating, created_at, tags)
           SELECT seq, 1 + seq % {users}, 'recipe ' || seq,
                  (ARRAY['draft', 'published', 'published', 'archived'])[1 + seq % 4]::recipe_status,
                  seq % 8, (seq % 500) / 100.0, '2026-03-29 01:30:00', ('[\"t' || seq || '\"]')::jsonb
           FROM generate_series(1, {recipes}) seq;
         INSERT INTO recipe_stories SELECT seq, 'story ' || seq FROM generate_series(1, {recipes}) seq WHERE seq % 2 = 0;
         INSERT INTO ingredients SELECT seq, 1 + (seq - 1) / 2, seq % 2, 'ingredient ' || seq, 1.50, 'g'
           FROM generate_series(1, {}) seq;",
        recipes * 2
    )
}
