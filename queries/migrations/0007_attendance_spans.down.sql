DROP TABLE attendance_spans;
