-- The decision function: a batch of requests, processed in order inside one transaction, each
-- evaluated exactly like `evaluate()` in @sluice/core (same integer formulas, same rounding).
--
-- This file holds what every kind shares: reading the batch, locking, the limit in force, the
-- all-or-nothing of a take, the answer's layout, due times and the write-back. Each kind's own
-- math lives in sql/kinds/<kind>.sql; `npm run generate -w @sluice/store-postgres` puts the two
-- together into src/sql/function.generated.ts (a test checks it is current). Generator markers:
--   {{declare}}                 the kinds' variables: policy parameters and `declare` sections
--   -- @each-kind ... -- @end   repeated once per kind (ascending code) as a CASE arm, with
--                               {{code}} the kind's code, {{params}} its parameters read from
--                               the policy tuple, {{<section>}} that kind's section (NULL; if it
--                               has none), its state variables written as the row `s`'s columns
--                               its `decode` section names (the state lives in the row itself)
--   {{table}} {{execute}} {{now}} {{stride}}  filled in per table at migrate()
--
-- Arguments (flat arrays; request q uses in_policy_count[q] policies and keys):
--   in_policies      policy tuples of {{stride}} bigints: kind code, then the kind's parameters
--                    in the order of the kinds table (zero-padded); request q's start at tuple
--                    in_policy_at[q] (0-based)
--   in_keys          the batch's distinct state keys, in the order to lock them (sorted)
--   in_key_index     per request and policy: 1-based index into in_keys
--   in_ops           one op letter per request (core's OP_CODES: t a p f c l r x)
--   in_costs, in_leases, in_renew_ttls (null = the policy's leaseTtlMs), in_learned_ttls
--   in_observations  per reconcile request, 3 values per policy (remaining, limit, resetAtMs;
--                    null where absent)
--   in_bounds        per request, per fixed window: a count, then that many window starts (a
--                    request whose clock lies outside a list of two or more is answered -2,
--                    BOUNDS_NEEDED: the client sends it again with bounds around the clock)
--   in_durable       whether the commit waits for the WAL flush
--   in_deadlines     per request, when its caller stops waiting (epoch ms on this store's clock;
--                    0 or null: none). A request read after it is only looked at, never applied,
--                    and answered -1 (allowed) with the clock: nobody is charged for a decision
--                    already answered without the store (a timeout, a replayed queue).
--
-- Locking: every distinct key of the batch is locked first, in the (sorted) order the client
-- sends them, by one INSERT ... ON CONFLICT that also creates missing rows as placeholders so they
-- are locked too. Every transaction takes its locks in the same global order, so concurrent
-- batches never deadlock. The clock is read after the locks are held, so a decision never uses a
-- time earlier than the one before it on the same key. State lives in memory for the rest of the
-- call and is written back once per key (one UPDATE, one DELETE for the batch), so a hot key
-- costs one row version per batch, not one per decision.
--
-- Integer notes: token-bucket units stay below 2^53 (validated by core); products that could
-- overflow bigint (a long idle time times the refill rate, a huge refund) are compared before they
-- are computed. Division of non-negative bigints truncates, which is floor; ceil(x / d) is
-- (x + d - 1) / d.
CREATE OR REPLACE FUNCTION {{execute}}(
  in_policies bigint[], in_policy_at int[], in_policy_count int[], in_keys text[],
  in_key_index int[], in_ops text, in_costs bigint[], in_leases text[], in_renew_ttls bigint[],
  in_learned_ttls bigint[], in_observations bigint[], in_bounds bigint[], in_durable boolean,
  in_deadlines bigint[]
) RETURNS text
LANGUAGE plpgsql
-- Plans of the statements below are cached per connection, often while the table is still empty;
-- a cached sequential scan or hash join then costs O(table) per call once it has grown (measured:
-- 5x slower at 10k rows until the next ANALYZE). Every lookup here is by primary key: say so.
-- And plan them once per connection: left to choose, the plan cache kept planning the statements
-- again for each call's arrays (a custom plan for a short array looks cheaper than the generic
-- one), 45-135 us of server CPU per call, 15-25% of it (measured per backend, 1 and 16 decisions).
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_generic_plan
AS $sluice$
DECLARE
  res bigint[] := '{}';
  rp int := 0;
  nreq int := coalesce(length(in_ops), 0);
  q int; i int; j int; np int; pb int;
  row_at int;
  key_at int := 0;
  obs_at int := 1;
  bounds_at int := 1;
  op "char"; cost bigint; lease text; now_ms bigint; late boolean; bounds_needed boolean;
  allowed bigint; lease_expiry_ms bigint; do_write boolean;
  limit_in_force bigint;
  learned_limit bigint; learned_limit_until_ms bigint;
  present boolean; retry_ms bigint;
  remaining bigint; reset_at_ms bigint; idle boolean;
  obs_remaining bigint; obs_limit bigint; obs_reset_at_ms bigint;
  s {{table}};
  st {{table}}[];
  rows {{table}}[];
  limits bigint[]; retries bigint[]; presents boolean[];
  dirty boolean[];
  any_dirty boolean := false;
  any_absent boolean;
{{declare}}
BEGIN
  -- The call is its own transaction: with durable: false its commit does not wait for the WAL
  -- flush (a crash forgets at most the last few hundred ms of decisions).
  IF NOT in_durable THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;

  -- Lock every key of the batch in one global order (see above). One statement, rows taken in the
  -- order given: an existing row is locked (DO UPDATE ... WHERE false locks without writing), a
  -- missing one is inserted as a placeholder, which locks it too.
  INSERT INTO {{table}} AS x (key, due_ms)
    SELECT u.k, -1 FROM unnest(in_keys) WITH ORDINALITY AS u(k, o) ORDER BY u.o
    ON CONFLICT (key) DO UPDATE SET due_ms = x.due_ms WHERE false;
  SELECT array_agg(x ORDER BY u.o), coalesce(bool_or(x.due_ms = -1), false) INTO rows, any_absent
    FROM unnest(in_keys) WITH ORDINALITY AS u(k, o) JOIN {{table}} x ON x.key = u.k;
  IF coalesce(cardinality(rows), 0) <> coalesce(cardinality(in_keys), 0) THEN
    RAISE EXCEPTION 'sluice: in_keys must be distinct';
  END IF;
  dirty := array_fill(false, ARRAY[coalesce(cardinality(in_keys), 0)]);

  FOR q IN 1..nreq LOOP
    -- "char": compared byte to byte, no collation (a dozen comparisons per decision).
    op := substr(in_ops, q, 1);
    np := in_policy_count[q];
    now_ms := {{now}}();
    late := coalesce(in_deadlines[q] > 0 AND now_ms > in_deadlines[q], false);
    IF late THEN op := 'p'; END IF;
    cost := CASE WHEN op = 'p' THEN 1 ELSE in_costs[q] END;
    allowed := 1;
    lease_expiry_ms := 0;
    bounds_needed := false;

    -- First pass: each policy's state brought to now under the limit in force, then the part of
    -- the op that needs no other policy: a take's or peek's check, a refund, a reconcile, a
    -- release, a renew's check.
    FOR i IN 1..np LOOP
      pb := (in_policy_at[q] + i - 1) * {{stride}};
      s := rows[in_key_index[key_at + i]];
      present := s.due_ms >= now_ms; -- past its due is default
      -- The limit in force: a learned limit until it lapses, else the configured one (every
      -- kind's first parameter).
      IF present AND s.ll > 0 AND now_ms < s.lu THEN
        learned_limit := s.ll; learned_limit_until_ms := s.lu; limit_in_force := s.ll;
      ELSE
        learned_limit := 0; learned_limit_until_ms := 0; limit_in_force := in_policies[pb + 2];
      END IF;
      IF op = 'c' THEN
        obs_remaining := in_observations[obs_at];
        obs_limit := in_observations[obs_at + 1];
        obs_reset_at_ms := in_observations[obs_at + 2];
        obs_at := obs_at + 3;
        IF obs_limit IS NOT NULL THEN
          learned_limit := obs_limit; learned_limit_until_ms := now_ms + in_learned_ttls[q];
          limit_in_force := obs_limit;
        END IF;
      END IF;
      retry_ms := 0;
      CASE in_policies[pb + 1]
-- @each-kind
      WHEN {{code}} THEN
        {{params}}
        {{bring_to_now}}
        IF op = 't' OR op = 'a' OR op = 'p' THEN
          {{check}}
        ELSIF op = 'f' THEN
          {{refund}}
        ELSIF op = 'c' THEN
          {{reconcile}}
        ELSIF op = 'l' THEN
          {{release}}
        ELSIF op = 'r' THEN
          {{renew_check}}
        END IF;
-- @end
      END CASE;
      IF retry_ms <> 0 THEN allowed := 0; END IF;
      -- With one policy (most limiters) the second pass goes on from these variables.
      IF np > 1 THEN
        s.ll := learned_limit; s.lu := learned_limit_until_ms;
        st[i] := s; limits[i] := limit_in_force; retries[i] := retry_ms; presents[i] := present;
      END IF;
    END LOOP;

    -- The clock is outside the window bounds the client sent for a fixed window (core's
    -- boundsCover): -2 (BOUNDS_NEEDED) with the clock, every other value 0, nothing applied.
    IF bounds_needed AND NOT late THEN
      res[rp + 1] := -2; res[rp + 2] := now_ms; res[rp + 3] := 0; res[rp + 4] := 0;
      rp := rp + 4;
      FOR i IN 1..np LOOP
        res[rp + 1] := 0; res[rp + 2] := 0; res[rp + 3] := 0; res[rp + 4] := 0; res[rp + 5] := 0;
        rp := rp + 5;
      END LOOP;
      key_at := key_at + np;
      CONTINUE;
    END IF;

    -- A refused take, a peek and a failed renew change nothing.
    do_write := allowed = 1 AND op <> 'p';
    -- Element assignment grows the (expanded) array in place; || would copy it every time.
    res[rp + 1] := CASE WHEN late THEN -1 ELSE allowed END;
    res[rp + 2] := now_ms; res[rp + 3] := 0; res[rp + 4] := 0;
    rp := rp + 4;

    -- Second pass: a take's charge or a renew (all or nothing, so after every check), then the
    -- answer and the state written back.
    FOR i IN 1..np LOOP
      IF np > 1 THEN
        pb := (in_policy_at[q] + i - 1) * {{stride}};
        s := st[i]; limit_in_force := limits[i]; retry_ms := retries[i]; present := presents[i];
        learned_limit := s.ll; learned_limit_until_ms := s.lu;
      END IF;
      row_at := in_key_index[key_at + i];
      IF op = 'x' THEN
        -- Back to default: the configured limit, all of it remaining.
        res[rp + 1] := in_policies[pb + 2]; res[rp + 2] := in_policies[pb + 2]; res[rp + 3] := now_ms;
        res[rp + 4] := 0; res[rp + 5] := 0;
        rp := rp + 5;
        IF present THEN
          s := rows[row_at]; s.due_ms := -1; rows[row_at] := s;
          any_absent := true;
        END IF;
        CONTINUE;
      END IF;
      CASE in_policies[pb + 1]
-- @each-kind
      WHEN {{code}} THEN
        IF np > 1 THEN
          {{params}}
        END IF;
        IF do_write AND (op = 't' OR op = 'a') THEN
          {{charge}}
        ELSIF do_write AND op = 'r' THEN
          {{renew}}
        END IF;
        {{answer}}
-- @end
      END CASE;
      res[rp + 1] := limit_in_force; res[rp + 2] := remaining; res[rp + 3] := reset_at_ms;
      res[rp + 4] := retry_ms; res[rp + 5] := CASE WHEN retry_ms <> 0 THEN 1 ELSE 0 END;
      rp := rp + 5;
      IF do_write THEN
        IF idle AND learned_limit = 0 THEN
          s.due_ms := -1;
          any_absent := true;
        ELSE
          -- State kept for a learned limit lives until the limit lapses, as evaluate() keeps it.
          s.due_ms := CASE
            WHEN learned_limit > 0 THEN greatest(CASE WHEN idle THEN now_ms ELSE reset_at_ms END,
                                                 learned_limit_until_ms)
            WHEN idle THEN now_ms
            ELSE reset_at_ms END;
          dirty[row_at] := true;
          any_dirty := true;
        END IF;
        IF learned_limit > 0 OR s.ll > 0 THEN
          s.ll := learned_limit; s.lu := learned_limit_until_ms;
        END IF;
        rows[row_at] := s;
      END IF;
    END LOOP;
    -- The header's third value, written before the policies' answers.
    IF lease_expiry_ms <> 0 THEN res[rp - 5 * np - 1] := lease_expiry_ms; END IF;

    -- A late reconcile (answered as a peek) read none of its observations: step over them.
    IF late AND substr(in_ops, q, 1) = 'c' THEN obs_at := obs_at + np * 3; END IF;
    key_at := key_at + np;
  END LOOP;

  -- Placeholders and state back to default: gone before anyone else can see them.
  -- Write back once per key, however many requests of the batch touched it. (Each statement
  -- skipped when it has nothing to do: a statement costs tens of microseconds even then.)
  IF any_dirty THEN
    UPDATE {{table}} x SET due_ms = r.due_ms, ll = r.ll, lu = r.lu, a = r.a, b = r.b, c = r.c,
                      xs = r.xs, ys = r.ys, ids = r.ids
      FROM unnest(rows) WITH ORDINALITY AS r(key, due_ms, ll, lu, a, b, c, xs, ys, ids, o)
      WHERE x.key = r.key AND r.due_ms >= 0 AND dirty[r.o];
  END IF;
  IF any_absent THEN
    DELETE FROM {{table}} x USING unnest(rows) AS r
      WHERE x.key = r.key AND r.due_ms = -1;
  END IF;

  -- Now and then, sweep rows that drifted back to default untouched. SKIP LOCKED: never wait,
  -- so this cannot join a lock cycle.
  IF random() < 0.02 THEN
    DELETE FROM {{table}} x USING (
      SELECT key FROM {{table}}
      WHERE due_ms >= 0 AND due_ms < now_ms
      ORDER BY due_ms LIMIT 64
      FOR UPDATE SKIP LOCKED
    ) due
    WHERE x.key = due.key;
  END IF;

  RETURN array_to_string(res, ',');
END
$sluice$
