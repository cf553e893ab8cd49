-- hodei_handoff_take (migration 0013) has had no caller since the hand-off's
-- pick moved to the start of the result's transaction (migration 0014's
-- hodei_handoff_pick, which an edge of the previous release still calls).
-- The edge now sends its pick itself, with the fit rule written once beside
-- the scheduler's (libs/domain, hodei/fit.h); hodei_handoff_pick goes in a
-- later migration, once no edge of the previous release runs.
DROP FUNCTION IF EXISTS hodei_handoff_take(uuid);
