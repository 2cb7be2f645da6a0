-- The auth schema is created by the migration runner; this file marks the baseline.
SELECT 1;
