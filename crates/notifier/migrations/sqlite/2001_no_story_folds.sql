-- The matcher keeps its fold of each story in memory and folds it again from the log
-- when needed: rewriting the whole fold for every batch made alerts as slow as the
-- story was long.
DROP TABLE notify_stories;
