-- One PostgreSQL server, one database per service (no service reads another's).
-- Runs once, on the first start of an empty data volume, as POSTGRES_USER.
CREATE DATABASE casebook_gateway;
CREATE DATABASE casebook_anonymiser;
CREATE DATABASE casebook_moderation;
CREATE DATABASE casebook_featuring;
CREATE DATABASE casebook_achievements;
CREATE DATABASE casebook_export;
