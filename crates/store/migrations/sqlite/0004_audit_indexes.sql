-- Bascule control plane, sqlite dialect (identical in both). The console reads a user's and a
-- host's recent audit lines: index the audit log by actor and by target, newest first.
CREATE INDEX audit_actor_at ON audit (actor, at);
CREATE INDEX audit_target_at ON audit (target, at);
