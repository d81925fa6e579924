DROP TABLE classroom_session_participants;
DROP TABLE classroom_sessions;
DROP TABLE classroom_members;
DROP TABLE classrooms;
DROP TABLE users;
