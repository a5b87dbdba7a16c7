"""Place-name search (地名查询): query normalisation, search keys, ranking and the SQL that finds candidates.

The pure parts (:mod:`keys`, :mod:`normalize`, :mod:`ranking`) need no database; :mod:`queries` runs the
index-backed look-ups in PostgreSQL and hands the candidates to the ranking; :mod:`records` holds the
changes to place names (rename keeping the former name, the pinyin override).
"""
