-- The ids of one page of a project's tasks, found by a statement planned for the values given.
--
-- A list filtered by a value whose best plan depends on it (a tag, a search, an assignee, a
-- priority, a status in another order than the default) or a later page cannot be prepared:
-- the generic plan of a tag or a search is a GIN bitmap over every project's tasks, ~40x slower
-- than the custom plans on the large bench set. So the whole list statement was planned at each
-- request, and planning it (the access check, the lateral page, the assignee join, the series
-- subquery, 12 indexes of tasks) cost PostgreSQL 0.19-0.26 ms, more than executing it.
--
-- Only the choice of the page needs the values: this function plans that alone (EXECUTE with
-- USING plans for the values, at each call: 0.03-0.06 ms), and the list statement around it,
-- which reads the page's rows by primary key, is the same for every value and is prepared.
--
-- page_query is built by the tasks service from fixed fragments only (a WHERE over $1..$6 and
-- an ORDER BY from a closed set, LIMIT $7 OFFSET $8); every value arrives as a parameter, never
-- as text. It returns one bigint[] (SELECT ARRAY(...)).
CREATE FUNCTION list_page_ids(
    page_query  text,
    project_id  bigint,
    status      text,
    assignee_id bigint,
    priority    text,
    search      text,
    tags        text[],
    page_limit  integer,
    page_offset integer
) RETURNS bigint[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    ids bigint[];
BEGIN
    EXECUTE page_query INTO ids
        USING project_id, status, assignee_id, priority, search, tags, page_limit, page_offset;
    RETURN ids;
END
$$;
