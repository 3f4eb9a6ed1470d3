-- Distillation: a promoted student's part in each request (tokenomy.distill.serve).
-- distill_mode: shadow | live | cascade | spot; distill_agreed: 1/0 when the student's answer was compared with the
-- teacher's (shadow, cascade, spot), NULL when it was not (live).
-- depends: 0001.initial

ALTER TABLE requests ADD COLUMN distill_task TEXT;
ALTER TABLE requests ADD COLUMN distill_mode TEXT;
ALTER TABLE requests ADD COLUMN distill_confidence REAL;
ALTER TABLE requests ADD COLUMN distill_agreed INTEGER;

CREATE INDEX requests_distill ON requests (distill_task, started_us);
