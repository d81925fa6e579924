-- Reserved: filled in by its feature branch.
SELECT 1;
