"""The room: the state every app process serving one class must share, in one store (gan_core.classroom.store).

The store holds the stage (what the presenter shows, followed by the students: classroom.stage), the room's predictions
(gan_core.lessons.predictions keeps its questions, votes and presence there) and the orders app processes send the one
that trains (classroom.orders); which process trains is the training lease (classroom.lease). Quotas are kept by that
one process, so every process's students share them. The key's throttle and shared comparisons (comparisons.json) are
still each server's own (gan_core.runs.roles, gan_core.lessons.shared_comparisons). No Streamlit here.
"""
