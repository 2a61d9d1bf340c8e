-- The full-text index of the `stories` view (`search.rs`); see 1000_views.sql for how these
-- files are applied.

-- One document per development (rowid: its position) and per story (a negative rowid from its
-- id), its text folded in Rust, its filters as words of their own column. Contentless: the text
-- is indexed, not kept (the rows are read from `developments` and `stories`); a document is
-- deleted by its rowid. No prefix indexes (`prefix = '2 3'` made the index cost a rebuild two
-- and a half times as much): a prefix query (`phish*`) merges the doclists of the terms that
-- begin with it (BENCHMARKS.md, Search).
CREATE VIRTUAL TABLE search USING fts5(
    headline,
    body,
    names,
    filters,
    tokenize = 'unicode61 remove_diacritics 2',
    content = '',
    contentless_delete = 1
);

-- Each document of `search`: its story and when it happened (the `from` and `to` filters),
-- under the same rowid.
CREATE TABLE search_keys (
    rowid       INTEGER PRIMARY KEY,
    story       TEXT NOT NULL,
    occurred_at TEXT
);
