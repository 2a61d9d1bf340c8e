-- The indexes PostgreSQL's migration of the same name adds; the columns they read are in
-- `developments` (1000_views.sql), which holds the table's current shape.
-- The projector finds the development an event changes by its id.
CREATE INDEX developments_id ON developments (story_id, id);
-- The newest published: a story's front-page time.
CREATE INDEX developments_published ON developments (story_id, published_at) WHERE state = 'published';
