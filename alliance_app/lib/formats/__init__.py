"""One way of writing a date (and a time) per language, used on every page (FORMAT_MODULE_PATH).

Django's own formats mix a short and a long date per language ("Nov. 27, 2026" beside
"11/30/2026"); here the long and short formats are the same, so a page written with either shows
one. English gets the day-month-year order with the month's short name ("27 Nov 2026"), which
no reader misreads, and times are on the 24-hour clock in every language.
"""
