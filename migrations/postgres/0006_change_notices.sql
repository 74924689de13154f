-- Change notices: a write of the inbox, the effects, the publications or the tasks is announced
-- on a channel named after the table (`threadsmith_inbox`, `threadsmith_effects`,
-- `threadsmith_publications`, `threadsmith_tasks`; NOTIFY is delivered at commit, and the notices of one
-- transaction collapse into one), so that a process waiting for another process's write
-- wakes when it is committed (bot/src/store/sql/notices.rs).
CREATE FUNCTION threadsmith_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('threadsmith_' || TG_TABLE_NAME, '');
    RETURN NULL;
END
$$;

CREATE TRIGGER inbox_changed AFTER INSERT OR UPDATE OR DELETE ON inbox
    FOR EACH ROW EXECUTE FUNCTION threadsmith_notify_change();

CREATE TRIGGER effects_changed AFTER INSERT OR UPDATE OR DELETE ON effects
    FOR EACH ROW EXECUTE FUNCTION threadsmith_notify_change();

CREATE TRIGGER publications_changed AFTER INSERT OR UPDATE OR DELETE ON publications
    FOR EACH ROW EXECUTE FUNCTION threadsmith_notify_change();

CREATE TRIGGER tasks_changed AFTER INSERT OR UPDATE OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION threadsmith_notify_change();
