-- The full-text index of the `stories` view (views schema 10 of `stories`; the rebuild it brings
-- on fills it), as `search` in views.db: one document per development (key: its position) and
-- per story (a negative key from its id). The text is folded in Rust (crates/projection/src/
-- search.rs) and written as `tsvector` literals, so no text search configuration, dictionary
-- or extension is involved and both databases index the same words. `filters` holds the
-- story, kind, actors and who may see it, as words, so that filters are answered by the index.
CREATE TABLE view_search (
    key         BIGINT PRIMARY KEY,
    story_id    TEXT NOT NULL,
    occurred_at TEXT COLLATE "C" NOT NULL,
    words       TSVECTOR NOT NULL,
    filters     TSVECTOR NOT NULL
);
CREATE INDEX view_search_words ON view_search USING gin (words);
CREATE INDEX view_search_filters ON view_search USING gin (filters);
