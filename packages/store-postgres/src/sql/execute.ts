import type { SqlNames } from "./names.js";

/** Op codes shared with the function below. */
export const OP = {
  take: 0,
  acquire: 1,
  peek: 2,
  refund: 3,
  reconcile: 4,
  release: 5,
  renew: 6,
  reset: 7,
} as const;

/** Kind codes in the encoded policy tuples. */
export const KIND = {
  tokenBucket: 1,
  pool: 2,
  fixedWindow: 3,
  slidingWindow: 4,
  concurrency: 5,
} as const;

/** The function's argument types, in order (its identity, for dropping older overloads). */
export const EXECUTE_ARGUMENT_TYPES = [
  "bigint[]",
  "integer[]",
  "integer[]",
  "text[]",
  "integer[]",
  "integer[]",
  "bigint[]",
  "text[]",
  "bigint[]",
  "bigint[]",
  "bigint[]",
  "bigint[]",
  "boolean",
] as const;

/** Every encoded policy is this many bigints: kind, limit, p1, p2, p3 (see `encodePolicies`). */
export const POLICY_STRIDE = 5;

/**
 * The decision function: a batch of requests, processed in order inside one transaction, each
 * evaluated exactly like `evaluate()` in `@sluice/core` (same integer formulas, same rounding).
 *
 * Arguments (flat arrays; request q uses `p_npol[q]` policies and keys):
 *   p_pol    encoded policy tuples; request q's start at tuple `p_poff[q]` (0-based)
 *   p_ukeys  the batch's distinct state keys, in the order to lock them (the client sorts them)
 *   p_kidx   per request and policy: 1-based index into p_ukeys
 *   p_op     op codes (OP), p_cost costs, p_lease lease ids, p_ttl renew ttls (null = default),
 *   p_llttl  learned-limit ttl
 *   p_obs    for each reconcile request, 3 values per policy (remaining, limit, resetAtMs; null
 *            where absent)
 *   p_bounds for each request, for each zoned fixed window: a count then that many window starts
 *   p_durable whether the commit waits for the WAL flush
 *
 * Locking: every distinct key of the batch is locked first, in the (sorted) order the client
 * sends them, by one INSERT ... ON CONFLICT that also creates missing rows as placeholders so they
 * are locked too. Every transaction takes its locks in the same global order, so concurrent
 * batches never deadlock. The clock is read after the locks are held, so a decision never uses a
 * time earlier than the one before it on the same key. State lives in memory for the rest of the
 * call and is written back once per key (one UPDATE, one DELETE for the batch), so a hot key
 * costs one row version per batch, not one per decision.
 *
 * Integer notes: token-bucket units stay below 2^53 (validated by core); products that could
 * overflow bigint (a long idle time times the refill rate, a huge refund) are compared before they
 * are computed. Division of non-negative bigints truncates, which is floor; ceil(x / d) is
 * (x + d - 1) / d.
 */
export function executeFunctionSql(n: SqlNames): string {
  const t = n.qualifiedTable;
  return `CREATE OR REPLACE FUNCTION ${n.executeFn}(
  p_pol bigint[], p_poff int[], p_npol int[], p_ukeys text[], p_kidx int[], p_op int[], p_cost bigint[],
  p_lease text[], p_ttl bigint[], p_llttl bigint[], p_obs bigint[], p_bounds bigint[],
  p_durable boolean
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
  nreq int := coalesce(cardinality(p_op), 0);
  k text;
  q int; i int; j int; np int; pb int;
  kb int := 0; ob int := 1; bb int := 1; nb int;
  op int; c bigint; lease text; now_ms bigint;
  allowed bigint; lease_exp bigint; do_write boolean;
  kd bigint; cfg bigint; lim bigint; w1 bigint; w2 bigint; w3 bigint;
  s ${t};
  st ${t}[];
  rows ${t}[];
  dirty boolean[];
  any_dirty boolean := false;
  any_absent boolean;
  lims bigint[]; retries bigint[]; pres boolean[];
  present boolean; v bigint; full_u bigint; steps bigint; need bigint; total bigint; slot bigint;
  o_rem bigint; o_lim bigint; o_reset bigint;
  ll bigint; lu bigint; remaining bigint; reset_at bigint; idle boolean;
  nids text[]; nys bigint[];
  fast boolean;
BEGIN
  -- Lock every key of the batch in one global order (see above).
  -- The call is its own transaction: with durable: false its commit does not wait for the WAL
  -- flush (a crash forgets at most the last few hundred ms of decisions).
  IF NOT p_durable THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;

  -- One statement, rows taken in the order given: an existing row is locked (DO UPDATE ... WHERE
  -- false locks without writing), a missing one is inserted as a placeholder, which locks it too.
  INSERT INTO ${t} AS x (key, due_ms)
    SELECT u.k, -1 FROM unnest(p_ukeys) WITH ORDINALITY AS u(k, o) ORDER BY u.o
    ON CONFLICT (key) DO UPDATE SET due_ms = x.due_ms WHERE false;
  SELECT array_agg(x ORDER BY u.o), coalesce(bool_or(x.due_ms = -1), false) INTO rows, any_absent
    FROM unnest(p_ukeys) WITH ORDINALITY AS u(k, o) JOIN ${t} x ON x.key = u.k;
  IF coalesce(cardinality(rows), 0) <> coalesce(cardinality(p_ukeys), 0) THEN
    RAISE EXCEPTION 'sluice: p_ukeys must be distinct';
  END IF;
  dirty := array_fill(false, ARRAY[coalesce(cardinality(p_ukeys), 0)]);

  FOR q IN 1..nreq LOOP
    op := p_op[q];
    np := p_npol[q];
    now_ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;

    -- Fast path: a plain take (no acquire) whose policies are all token buckets, pools or fixed
    -- windows without time-zone bounds, none under a learned limit. The same formulas as the
    -- general path below, in two passes instead of four and with fewer statements (each PL/pgSQL
    -- statement costs ~0.2 us, and this is most of the decisions). A request that does not
    -- qualify leaves this pass before it changed anything and goes the general way.
    fast := op = 0;
    IF fast THEN
      c := p_cost[q];
      allowed := 1;
      FOR i IN 1..np LOOP
        pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
        kd := p_pol[pb + 1];
        s := rows[p_kidx[kb + i]];
        IF kd > 3 OR p_pol[pb + 5] <> 0 OR s.ll <> 0 THEN fast := false; EXIT; END IF;
        lim := p_pol[pb + 2]; w1 := p_pol[pb + 3]; w2 := p_pol[pb + 4];
        present := s.due_ms >= now_ms; -- past its due is default
        v := 0;
        CASE kd
        WHEN 1 THEN
          full_u := lim * w2;
          IF NOT present THEN
            s.a := full_u; s.b := now_ms;
          ELSE
            IF s.b < now_ms THEN
              IF s.a >= full_u OR now_ms - s.b >= (full_u - s.a + w1 - 1) / w1 THEN
                s.a := full_u;
              ELSE
                s.a := s.a + (now_ms - s.b) * w1;
              END IF;
              s.b := now_ms;
            END IF;
            IF s.a > full_u THEN s.a := full_u; END IF;
          END IF;
          IF c > lim THEN v := -1;
          ELSIF s.a < c * w2 THEN v := s.b - now_ms + (c * w2 - s.a + w1 - 1) / w1;
          END IF;
        WHEN 2 THEN
          IF NOT present OR s.a >= lim THEN
            s.a := lim; s.b := 0;
          ELSIF now_ms >= s.b THEN
            steps := (now_ms - s.b) / w2;
            IF steps >= (lim - s.a + w1 - 1) / w1 THEN
              s.a := lim; s.b := 0;
            ELSE
              s.a := s.a + steps * w1; s.b := s.b + steps * w2;
            END IF;
          END IF;
          IF c > lim THEN v := -1;
          ELSIF s.a < c THEN v := s.b + ((c - s.a + w1 - 1) / w1) * w2 - now_ms;
          END IF;
        ELSE
          IF NOT (present AND s.a > 0 AND now_ms < s.c) THEN
            s.a := 0;
            IF w2 = 1 THEN
              s.b := now_ms; s.c := now_ms + w1;
            ELSE
              s.b := now_ms / w1 * w1; s.c := s.b + w1;
            END IF;
          END IF;
          IF c > lim THEN v := -1;
          ELSIF s.a + c > lim THEN v := s.c - now_ms;
          END IF;
        END CASE;
        IF v <> 0 THEN allowed := 0; END IF;
        s.lu := 0;
        -- With one policy (the common case) the second pass reuses s, v and the tuple as they are.
        IF np > 1 THEN st[i] := s; retries[i] := v; END IF;
      END LOOP;
    END IF;
    IF fast THEN
      res[rp + 1] := allowed; res[rp + 2] := now_ms; res[rp + 3] := 0; res[rp + 4] := 0;
      rp := rp + 4;
      FOR i IN 1..np LOOP
        IF np > 1 THEN
          pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
          kd := p_pol[pb + 1]; lim := p_pol[pb + 2]; w1 := p_pol[pb + 3]; w2 := p_pol[pb + 4];
          s := st[i]; v := retries[i];
        END IF;
        CASE kd
        WHEN 1 THEN
          IF allowed = 1 THEN s.a := s.a - c * w2; END IF;
          full_u := lim * w2;
          remaining := s.a / w2;
          IF s.a >= full_u THEN
            reset_at := greatest(now_ms, s.b);
          ELSE
            reset_at := s.b + (full_u - s.a + w1 - 1) / w1;
          END IF;
          idle := s.a >= full_u AND s.b <= now_ms;
        WHEN 2 THEN
          IF allowed = 1 THEN
            IF s.a >= lim THEN s.b := now_ms; END IF;
            s.a := s.a - c;
          END IF;
          remaining := s.a;
          IF s.a >= lim THEN
            reset_at := now_ms;
          ELSE
            reset_at := s.b + ((lim - s.a + w1 - 1) / w1) * w2;
          END IF;
          idle := s.a >= lim;
        ELSE
          IF allowed = 1 THEN s.a := s.a + c; END IF;
          remaining := greatest(0, lim - s.a);
          reset_at := CASE WHEN s.a <= 0 THEN now_ms ELSE s.c END;
          idle := s.a <= 0;
        END CASE;
        res[rp + 1] := lim; res[rp + 2] := remaining; res[rp + 3] := reset_at;
        res[rp + 4] := v; res[rp + 5] := CASE WHEN v <> 0 THEN 1 ELSE 0 END;
        rp := rp + 5;
        IF allowed = 1 THEN
          j := p_kidx[kb + i];
          IF idle THEN
            s.due_ms := -1;
            any_absent := true;
          ELSE
            s.due_ms := greatest(reset_at, 0);
            dirty[j] := true;
            any_dirty := true;
          END IF;
          rows[j] := s;
        END IF;
      END LOOP;
      kb := kb + np;
      CONTINUE;
    END IF;

    lease := p_lease[q];
    allowed := 1;
    lease_exp := 0;
    do_write := true;
    st := '{}';
    lims := '{}';
    retries := '{}';
    pres := '{}';

    -- Load: every policy's state advanced to now_ms, with the limit in force.
    FOR i IN 1..np LOOP
      pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
      kd := p_pol[pb + 1]; cfg := p_pol[pb + 2];
      w1 := p_pol[pb + 3]; w2 := p_pol[pb + 4]; w3 := p_pol[pb + 5];
      s := rows[p_kidx[kb + i]];
      present := s.due_ms >= now_ms; -- past its due is default
      IF present AND s.ll > 0 AND now_ms < s.lu THEN
        lim := s.ll; ll := s.ll; lu := s.lu;
      ELSE
        lim := cfg; ll := 0; lu := 0;
      END IF;
      IF op = 4 THEN
        o_lim := p_obs[ob + (i - 1) * 3 + 1];
        IF o_lim IS NOT NULL THEN
          ll := o_lim; lu := now_ms + p_llttl[q]; lim := ll;
        END IF;
      END IF;
      CASE kd
      WHEN 1 THEN
        full_u := lim * w2;
        IF NOT present THEN
          s.a := full_u; s.b := now_ms;
        ELSE
          IF s.b < now_ms THEN
            IF s.a >= full_u OR now_ms - s.b >= (full_u - s.a + w1 - 1) / w1 THEN
              s.a := full_u;
            ELSE
              s.a := s.a + (now_ms - s.b) * w1;
            END IF;
            s.b := now_ms;
          END IF;
          IF s.a > full_u THEN s.a := full_u; END IF;
        END IF;
      WHEN 2 THEN
        IF NOT present OR s.a >= lim THEN
          s.a := lim; s.b := 0;
        ELSIF now_ms >= s.b THEN
          steps := (now_ms - s.b) / w2;
          IF steps >= (lim - s.a + w1 - 1) / w1 THEN
            s.a := lim; s.b := 0;
          ELSE
            s.a := s.a + steps * w1; s.b := s.b + steps * w2;
          END IF;
        END IF;
      WHEN 3 THEN
        IF NOT (present AND s.a > 0 AND now_ms < s.c) THEN
          s.a := 0;
          IF w2 = 1 THEN
            s.b := now_ms; s.c := now_ms + w1;
          ELSE
            s.b := NULL;
            IF w3 = 1 THEN
              nb := p_bounds[bb];
              IF nb >= 2 AND now_ms >= p_bounds[bb + 1] AND now_ms < p_bounds[bb + nb] THEN
                j := 1;
                WHILE j < nb - 1 AND p_bounds[bb + j + 1] <= now_ms LOOP j := j + 1; END LOOP;
                s.b := p_bounds[bb + j]; s.c := p_bounds[bb + j + 1];
              END IF;
            END IF;
            IF s.b IS NULL THEN
              s.b := now_ms / w1 * w1; s.c := s.b + w1;
            END IF;
          END IF;
        END IF;
        IF w3 = 1 THEN bb := bb + 1 + p_bounds[bb]::int; END IF;
      WHEN 4 THEN
        IF NOT present OR s.xs IS NULL THEN
          s.xs := '{}'; s.ys := '{}';
        ELSE
          v := floor((now_ms - w1)::numeric / w2)::bigint;
          j := 1;
          WHILE j <= cardinality(s.xs) AND s.xs[j] < v LOOP j := j + 1; END LOOP;
          IF j > 1 THEN s.xs := s.xs[j:]; s.ys := s.ys[j:]; END IF;
        END IF;
      ELSE
        IF NOT present OR s.ids IS NULL THEN
          s.ids := '{}'; s.ys := '{}';
        ELSE
          nids := '{}'; nys := '{}';
          FOR j IN 1..cardinality(s.ids) LOOP
            IF s.ys[j] > now_ms THEN
              nids := array_append(nids, s.ids[j]); nys := array_append(nys, s.ys[j]);
            END IF;
          END LOOP;
          s.ids := nids; s.ys := nys;
        END IF;
      END CASE;
      s.ll := ll; s.lu := lu; s.due_ms := 0;
      st[i] := s; lims[i] := lim; retries[i] := 0; pres[i] := present;
    END LOOP;

    IF op <= 2 THEN
      -- take / take+acquire / peek: check every policy, then charge all or none.
      c := CASE WHEN op = 2 THEN 1 ELSE p_cost[q] END;
      FOR i IN 1..np LOOP
        pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
        kd := p_pol[pb + 1]; w1 := p_pol[pb + 3]; w2 := p_pol[pb + 4];
        CONTINUE WHEN kd = 5 AND op <> 1;
        s := st[i]; lim := lims[i]; v := 0;
        CASE kd
        WHEN 1 THEN
          IF c > lim THEN v := -1;
          ELSE
            need := c * w2;
            IF s.a < need THEN v := s.b - now_ms + (need - s.a + w1 - 1) / w1; END IF;
          END IF;
        WHEN 2 THEN
          IF c > lim THEN v := -1;
          ELSIF s.a < c THEN v := s.b + ((c - s.a + w1 - 1) / w1) * w2 - now_ms;
          END IF;
        WHEN 3 THEN
          IF c > lim THEN v := -1;
          ELSIF s.a + c > lim THEN v := s.c - now_ms;
          END IF;
        WHEN 4 THEN
          IF c > lim THEN v := -1;
          ELSE
            total := 0;
            FOR j IN 1..cardinality(s.ys) LOOP total := total + s.ys[j]; END LOOP;
            IF total + c > lim THEN
              need := total + c - lim;
              v := -1;
              FOR j IN 1..cardinality(s.ys) LOOP
                need := need - s.ys[j];
                IF need <= 0 THEN v := (s.xs[j] + 1) * w2 + w1 - now_ms; EXIT; END IF;
              END LOOP;
            END IF;
          END IF;
        ELSE
          IF cardinality(s.ids) >= lim THEN
            v := NULL;
            FOR j IN 1..cardinality(s.ys) LOOP
              IF v IS NULL OR s.ys[j] < v THEN v := s.ys[j]; END IF;
            END LOOP;
            v := greatest(1, coalesce(v, 0) - now_ms);
          END IF;
        END CASE;
        retries[i] := v;
        IF v <> 0 THEN allowed := 0; END IF;
      END LOOP;
      IF op = 2 OR allowed = 0 THEN
        do_write := false;
      ELSE
        FOR i IN 1..np LOOP
          pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
          kd := p_pol[pb + 1]; w1 := p_pol[pb + 3]; w2 := p_pol[pb + 4];
          s := st[i]; lim := lims[i];
          CASE kd
          WHEN 1 THEN s.a := s.a - c * w2;
          WHEN 2 THEN
            IF s.a >= lim THEN s.b := now_ms; END IF;
            s.a := s.a - c;
          WHEN 3 THEN s.a := s.a + c;
          WHEN 4 THEN
            slot := now_ms / w2;
            j := cardinality(s.xs);
            WHILE j >= 1 AND s.xs[j] > slot LOOP j := j - 1; END LOOP;
            IF j >= 1 AND s.xs[j] = slot THEN
              s.ys[j] := s.ys[j] + c;
            ELSE
              s.xs := s.xs[1:j] || slot || s.xs[j + 1:];
              s.ys := s.ys[1:j] || c || s.ys[j + 1:];
            END IF;
          ELSE
            -- A plain take leaves slots alone; take with acquire holds one of each.
            CONTINUE WHEN op <> 1;
            v := now_ms + w1;
            j := array_position(s.ids, lease);
            IF j IS NULL THEN
              s.ids := array_append(s.ids, lease); s.ys := array_append(s.ys, v);
            ELSE
              s.ys[j] := v;
            END IF;
            IF lease_exp = 0 OR v < lease_exp THEN lease_exp := v; END IF;
          END CASE;
          st[i] := s;
        END LOOP;
      END IF;
    ELSIF op = 3 THEN
      c := p_cost[q];
      FOR i IN 1..np LOOP
        pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
        kd := p_pol[pb + 1]; w2 := p_pol[pb + 4];
        s := st[i]; lim := lims[i];
        CASE kd
        WHEN 1 THEN
          full_u := lim * w2;
          IF c >= lim THEN s.a := full_u; ELSE s.a := least(full_u, s.a + c * w2); END IF;
        WHEN 2 THEN
          s.a := least(lim, s.a + c);
          IF s.a >= lim THEN s.b := 0; END IF;
        WHEN 3 THEN s.a := greatest(0, s.a - c);
        WHEN 4 THEN
          v := c;
          j := cardinality(s.xs);
          WHILE j >= 1 AND v > 0 LOOP
            need := least(v, s.ys[j]);
            s.ys[j] := s.ys[j] - need;
            v := v - need;
            IF s.ys[j] = 0 THEN
              s.xs := s.xs[1:j - 1] || s.xs[j + 1:];
              s.ys := s.ys[1:j - 1] || s.ys[j + 1:];
            END IF;
            j := j - 1;
          END LOOP;
        ELSE NULL;
        END CASE;
        st[i] := s;
      END LOOP;
    ELSIF op = 4 THEN
      FOR i IN 1..np LOOP
        pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
        kd := p_pol[pb + 1]; w1 := p_pol[pb + 3]; w2 := p_pol[pb + 4];
        o_rem := p_obs[ob + (i - 1) * 3];
        o_reset := p_obs[ob + (i - 1) * 3 + 2];
        s := st[i]; lim := lims[i];
        CASE kd
        WHEN 1 THEN
          -- remaining >= limit cannot lower a level that is at most full_u (and may overflow).
          IF o_rem IS NOT NULL AND o_rem < lim THEN s.a := least(s.a, o_rem * w2); END IF;
          IF o_reset IS NOT NULL AND o_reset > now_ms AND o_reset > s.b THEN s.b := o_reset; END IF;
        WHEN 2 THEN
          IF o_rem IS NOT NULL AND o_rem < s.a THEN
            IF s.a >= lim THEN s.b := now_ms; END IF;
            s.a := o_rem;
          END IF;
          IF o_reset IS NOT NULL AND o_reset > now_ms AND s.a < lim THEN
            s.b := greatest(s.b, o_reset - w2);
          END IF;
        WHEN 3 THEN
          IF o_reset IS NOT NULL AND o_reset > now_ms THEN s.c := o_reset; END IF;
          IF o_rem IS NOT NULL THEN s.a := greatest(s.a, lim - o_rem); END IF;
        WHEN 4 THEN
          IF o_rem IS NOT NULL THEN
            total := 0;
            FOR j IN 1..cardinality(s.ys) LOOP total := total + s.ys[j]; END LOOP;
            v := lim - o_rem - total;
            IF v > 0 THEN
              slot := now_ms / w2;
              IF o_reset IS NOT NULL AND o_reset > now_ms THEN
                slot := greatest(
                  ceil((o_reset - w1)::numeric / w2)::bigint - 1,
                  floor((now_ms - w1)::numeric / w2)::bigint);
              END IF;
              j := cardinality(s.xs);
              WHILE j >= 1 AND s.xs[j] > slot LOOP j := j - 1; END LOOP;
              IF j >= 1 AND s.xs[j] = slot THEN
                s.ys[j] := s.ys[j] + v;
              ELSE
                s.xs := s.xs[1:j] || slot || s.xs[j + 1:];
                s.ys := s.ys[1:j] || v || s.ys[j + 1:];
              END IF;
            END IF;
          END IF;
        ELSE NULL;
        END CASE;
        st[i] := s;
      END LOOP;
    ELSIF op = 5 THEN
      FOR i IN 1..np LOOP
        pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
        CONTINUE WHEN p_pol[pb + 1] <> 5;
        s := st[i];
        j := array_position(s.ids, lease);
        IF j IS NOT NULL THEN
          s.ids := s.ids[1:j - 1] || s.ids[j + 1:];
          s.ys := s.ys[1:j - 1] || s.ys[j + 1:];
          st[i] := s;
        END IF;
      END LOOP;
    ELSIF op = 6 THEN
      -- All or nothing: a lease missing from any slot is gone.
      FOR i IN 1..np LOOP
        pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
        IF p_pol[pb + 1] = 5 AND array_position(st[i].ids, lease) IS NULL THEN allowed := 0; END IF;
      END LOOP;
      IF allowed = 0 THEN
        do_write := false;
      ELSE
        FOR i IN 1..np LOOP
          pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
          CONTINUE WHEN p_pol[pb + 1] <> 5;
          s := st[i];
          v := now_ms + coalesce(p_ttl[q], p_pol[pb + 3]);
          j := array_position(s.ids, lease);
          s.ys[j] := v;
          IF lease_exp = 0 OR v < lease_exp THEN lease_exp := v; END IF;
          st[i] := s;
        END LOOP;
      END IF;
    ELSIF op = 7 THEN
      FOR i IN 1..np LOOP
        s := st[i]; s.due_ms := -1; st[i] := s;
      END LOOP;
    END IF;

    -- Result, and the write-back of every state when the op writes.
    -- Element assignment grows the (expanded) array in place; || would copy it every time.
    res[rp + 1] := allowed; res[rp + 2] := now_ms; res[rp + 3] := lease_exp; res[rp + 4] := 0;
    rp := rp + 4;
    FOR i IN 1..np LOOP
      pb := (p_poff[q] + i - 1) * ${POLICY_STRIDE};
      kd := p_pol[pb + 1]; cfg := p_pol[pb + 2];
      w1 := p_pol[pb + 3]; w2 := p_pol[pb + 4];
      s := st[i]; lim := lims[i];
      IF s.due_ms = -1 THEN
        res[rp + 1] := cfg; res[rp + 2] := cfg; res[rp + 3] := now_ms;
        res[rp + 4] := 0; res[rp + 5] := 0;
        rp := rp + 5;
        IF pres[i] THEN
          j := p_kidx[kb + i]; s := rows[j]; s.due_ms := -1; rows[j] := s;
          any_absent := true;
        END IF;
        CONTINUE;
      END IF;
      CASE kd
      WHEN 1 THEN
        full_u := lim * w2;
        remaining := s.a / w2;
        IF s.a >= full_u THEN
          reset_at := greatest(now_ms, s.b);
        ELSE
          reset_at := s.b + (full_u - s.a + w1 - 1) / w1;
        END IF;
        idle := s.a >= full_u AND s.b <= now_ms;
      WHEN 2 THEN
        remaining := s.a;
        IF s.a >= lim THEN
          reset_at := now_ms;
        ELSE
          reset_at := s.b + ((lim - s.a + w1 - 1) / w1) * w2;
        END IF;
        idle := s.a >= lim;
      WHEN 3 THEN
        remaining := greatest(0, lim - s.a);
        reset_at := CASE WHEN s.a <= 0 THEN now_ms ELSE s.c END;
        idle := s.a <= 0;
      WHEN 4 THEN
        total := 0;
        FOR j IN 1..cardinality(s.ys) LOOP total := total + s.ys[j]; END LOOP;
        remaining := greatest(0, lim - total);
        idle := cardinality(s.xs) = 0;
        reset_at := CASE WHEN idle THEN now_ms ELSE (s.xs[cardinality(s.xs)] + 1) * w2 + w1 END;
      ELSE
        remaining := greatest(0, lim - cardinality(s.ids));
        reset_at := now_ms;
        FOR j IN 1..cardinality(s.ys) LOOP
          IF s.ys[j] > reset_at THEN reset_at := s.ys[j]; END IF;
        END LOOP;
        idle := cardinality(s.ids) = 0;
      END CASE;
      res[rp + 1] := lim; res[rp + 2] := remaining; res[rp + 3] := reset_at;
      res[rp + 4] := retries[i]; res[rp + 5] := CASE WHEN retries[i] <> 0 THEN 1 ELSE 0 END;
      rp := rp + 5;
      IF do_write THEN
        j := p_kidx[kb + i];
        IF idle AND s.ll = 0 THEN
          s.due_ms := -1;
          any_absent := true;
        ELSE
          s.due_ms := CASE WHEN idle THEN now_ms ELSE reset_at END;
          -- State kept for a learned limit outlives its lapse by a full refill at the configured
          -- capacity (a bucket or pool held below it refills only then), as evaluate() does.
          IF s.ll > 0 THEN
            s.due_ms := greatest(s.due_ms, s.lu + CASE kd
              WHEN 1 THEN (cfg * w2 + w1 - 1) / w1
              WHEN 2 THEN ((cfg + w1 - 1) / w1) * w2
              ELSE 0 END);
          END IF;
          dirty[j] := true;
          any_dirty := true;
        END IF;
        rows[j] := s;
      END IF;
    END LOOP;

    IF op = 4 THEN ob := ob + np * 3; END IF;
    kb := kb + np;
  END LOOP;

  -- Placeholders and state back to default: gone before anyone else can see them.
  -- Write back once per key, however many requests of the batch touched it. (Each statement
  -- skipped when it has nothing to do: a statement costs tens of microseconds even then.)
  IF any_dirty THEN
    UPDATE ${t} x SET due_ms = r.due_ms, ll = r.ll, lu = r.lu, a = r.a, b = r.b, c = r.c,
                      xs = r.xs, ys = r.ys, ids = r.ids
      FROM unnest(rows) WITH ORDINALITY AS r(key, due_ms, ll, lu, a, b, c, xs, ys, ids, o)
      WHERE x.key = r.key AND r.due_ms >= 0 AND dirty[r.o];
  END IF;
  IF any_absent THEN
    DELETE FROM ${t} x USING unnest(rows) AS r
      WHERE x.key = r.key AND r.due_ms = -1;
  END IF;

  -- Now and then, sweep rows that drifted back to default untouched. SKIP LOCKED: never wait,
  -- so this cannot join a lock cycle.
  IF random() < 0.02 THEN
    DELETE FROM ${t} x USING (
      SELECT key FROM ${t}
      WHERE due_ms >= 0 AND due_ms < now_ms
      ORDER BY due_ms LIMIT 64
      FOR UPDATE SKIP LOCKED
    ) due
    WHERE x.key = due.key;
  END IF;

  RETURN array_to_string(res, ',');
END
$sluice$`;
}
