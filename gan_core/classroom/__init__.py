"""The room: the state every app process serving one class must share, in one store (gan_core.classroom.store).

Today the store holds the stage (what the presenter shows, followed by the students: classroom.stage) and the room's
predictions (gan_core.lessons.predictions keeps its questions, votes and presence there). Roles and quotas, the key's
throttle and shared comparisons are still each server's own (gan_core.runs.roles, gan_core.lessons.shared_comparisons);
they move here one by one (issue 28), so that a second app process on the same runs folder joins the same room instead
of starting a second one. No Streamlit here.
"""
