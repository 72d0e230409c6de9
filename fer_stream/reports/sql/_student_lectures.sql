-- student_lectures(course, date_from, date_to, video, student): per student per lecture of
-- lectures_in(course, date_from, date_to, video), the counts and means that several reports
-- build on. Registered by fer_stream.reports.connect once the faces view exists.
--
-- * one row per (video_id, student_id) of the faces view (each video's latest done run); faces of no
--   student (stray detections) are left out; student: one student_id, or null for all. The
--   lectures are chosen before aggregating, so a report on one course reads only its faces.
-- * frames_visible = sampled frames in which the student is seen (a student has at most one face
--   per frame).
-- * mean_attention = mean attention score over the frames where it was measured; attention_rate =
--   attentive / measured frames (unmeasured and not-visible frames are never inattentive).
-- * frames_emotion_readable = frames whose face was big enough to read an emotion from (the records'
--   `emotion` is null below the gate, docs/VALIDITY.md); n_<emotion> = readable frames whose top
--   emotion is <emotion>; p_<emotion> = mean probability over the readable frames only.
-- * frames_measured = frames with an attention score (face big enough for head pose).
create or replace temp macro student_lectures(want_course, want_from, want_to, want_video, want_student) as table
    select
        video_id,
        student_id,
        count(*) as frames_visible,
        count(emotion) as frames_emotion_readable,
        count(attention) as frames_measured,
        avg(attention) as mean_attention,
        count(*) filter (where attentive) / nullif(count(attention), 0) as attention_rate,
        count(*) filter (where emotion = 'angry') as n_angry,
        count(*) filter (where emotion = 'disgust') as n_disgust,
        count(*) filter (where emotion = 'fear') as n_fear,
        count(*) filter (where emotion = 'happy') as n_happy,
        count(*) filter (where emotion = 'sad') as n_sad,
        count(*) filter (where emotion = 'surprise') as n_surprise,
        count(*) filter (where emotion = 'neutral') as n_neutral,
        avg(p_angry) filter (where emotion is not null) as p_angry,
        avg(p_disgust) filter (where emotion is not null) as p_disgust,
        avg(p_fear) filter (where emotion is not null) as p_fear,
        avg(p_happy) filter (where emotion is not null) as p_happy,
        avg(p_sad) filter (where emotion is not null) as p_sad,
        avg(p_surprise) filter (where emotion is not null) as p_surprise,
        avg(p_neutral) filter (where emotion is not null) as p_neutral
    from faces
    where video_id in (select video_id from lectures_in(want_course, want_from, want_to, want_video))
        and student_id is not null
        and (want_student is null or student_id = want_student)
    group by video_id, student_id;
