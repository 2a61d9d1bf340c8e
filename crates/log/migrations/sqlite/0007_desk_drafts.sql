-- The desk's drafts (`auth.rs`): what each person typed into a form, saved as they type.
CREATE TABLE desk_drafts (
    token_id  TEXT NOT NULL REFERENCES tokens (id),
    draft_key TEXT NOT NULL,
    fields    TEXT NOT NULL,
    saved_at  TEXT NOT NULL,
    PRIMARY KEY (token_id, draft_key)
);
