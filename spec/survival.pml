/*
 * survival.pml: posture machine + invariant/kill path + order gate against an arbitrary
 * environment, checked by SPIN (spin -a survival.pml; gcc -o pan pan.c; ./pan).
 *
 * Environment (each action atomic, followed by the controller's reaction):
 *   tick  : R_total moves to any value, falling arbitrarily fast but rising at most REC
 *           percentage points per tick (slow recovery); then the controller steps.
 *   cap   : the layers' posture cap changes arbitrarily (no time passes); the controller steps
 *           without the dwell flag: R is the last tick's, so this step may only tighten.
 *   kill  : an invariant violation (or the kill switch) latches the kill path.
 *   rearm : an operator rearms a killed controller (R may then jump: undamped invariants).
 *   order : execution asks the gate for an ENTRY / EXIT / CANCEL, maker or taker.
 * Properties (assertions):
 *   P1 no ENTRY or EXIT order passes the gate in HIBERNATE or while killed;
 *   P2 an invariant violation reaches HIBERNATE in the same step (killed -> HIBERNATE always);
 *   P3 no oscillation faster than the hysteresis allows: an upgrade needs DWELL ticks since the
 *      last posture change, R >= the boundary's UP threshold, and, if R was below the boundary's
 *      DOWN threshold, at least ceil((UP - DOWN) / REC) ticks since then; a downgrade needs
 *      R < the boundary's DOWN threshold, a cap or a kill;
 *   P4 a cap change never upgrades the posture (it sees the last tick's R, which may be stale).
 */
#include "survival_core.pml"

#ifndef DWELL
#define DWELL 3      /* minimum ticks in a posture before an upgrade */
#endif
#ifndef REC
#define REC 1        /* max rise of R_total per tick, percentage points */
#endif
#define BAND_A ((UP_A - DOWN_A + REC - 1) / REC)
#define BAND_S ((UP_S - DOWN_S + REC - 1) / REC)
#define BAND_T ((UP_T - DOWN_T + REC - 1) / REC)

byte p = HIBERNATE;
byte r = 100;
byte cap = APEX;
bool killed = false;
/* tick counters saturate at the value their assertion needs (keeps the state space small) */
byte since_change = 0;
byte below_a = BAND_A;   /* ticks since R was last < DOWN_A (BAND_A = long enough / never) */
byte below_s = BAND_S;
byte below_t = BAND_T;

inline sat_inc(x, top) {
  if
  :: x < top -> x++
  :: else -> skip
  fi
}

/* P3, checked on every posture change from old to p */
inline check_change(old) {
  if
  :: p < old ->
     assert(since_change >= DWELL);
     if
     :: p == TURTLE -> assert(r >= UP_T && below_t >= BAND_T)
     :: p == STALKER -> assert(r >= UP_S && below_s >= BAND_S)
     :: p == APEX -> assert(r >= UP_A && below_a >= BAND_A)
     fi
  :: p > old && !killed ->
     assert(old > STALKER || r < DOWN_A || cap > APEX);
     assert(p < TURTLE || old > TURTLE || r < DOWN_S || cap > STALKER);
     assert(p < HIBERNATE || r < DOWN_T || cap > TURTLE)
  :: else -> skip
  fi
}

inline controller_step(dw) {
  old = p;
  posture_step(old, r, cap, killed, dw, out);
  p = out;
  if
  :: p != old -> check_change(old); since_change = 0
  :: else -> skip
  fi;
  assert(!killed || p == HIBERNATE)   /* P2 */
}

active proctype world() {
  byte r2, kind, v, out, old, old2;
  bool taker;
  do
  :: atomic {   /* tick */
       r2 = 0;
       do
       :: r2 < 100 && r2 < r + REC -> r2++
       :: break
       od;
       r = r2;
       if
       :: killed -> r = 0
       :: else -> skip
       fi;
       sat_inc(since_change, DWELL);
       sat_inc(below_a, BAND_A); sat_inc(below_s, BAND_S); sat_inc(below_t, BAND_T);
       if :: r < DOWN_A -> below_a = 0 :: else -> skip fi;
       if :: r < DOWN_S -> below_s = 0 :: else -> skip fi;
       if :: r < DOWN_T -> below_t = 0 :: else -> skip fi;
       controller_step(since_change >= DWELL)
     }
  :: atomic {   /* the layers' posture cap changes (RTT lockdown, thin book); no time passes */
       select(cap : APEX .. HIBERNATE);
       old2 = p;
#ifndef BROKEN_CAP_UPGRADE
       controller_step(false);
#else
       controller_step(since_change >= DWELL);   /* deliberately broken: a cap step may upgrade */
#endif
       assert(p >= old2);   /* P4 */
       old2 = 0
     }
  :: atomic {   /* invariant violation / kill switch */
       !killed -> killed = true; r = 0;
#ifndef BROKEN_KILL_LAG
       controller_step(since_change >= DWELL)
#else
       skip   /* deliberately broken: the kill waits for the next tick */
#endif
     }
  :: atomic {   /* operator rearm once invariants hold; R may jump (undamped) */
       killed -> killed = false;
       select(r : 0 .. 100);
       below_a = BAND_A; below_s = BAND_S; below_t = BAND_T;
       controller_step(since_change >= DWELL)
     }
  :: atomic {   /* an order at the gate */
       select(kind : ENTRY .. CANCEL);
       if :: taker = true :: taker = false fi;
       gate(p, killed, kind, taker, v);
       if
       :: v == ALLOW && kind != CANCEL -> assert(!killed && p != HIBERNATE)   /* P1 */
       :: else -> skip
       fi;
       if
       :: v == ALLOW && kind == ENTRY -> assert(p == APEX || (p == STALKER && !taker))
       :: else -> skip
       fi;
       kind = 0; taker = false; v = 0
     }
  od
}
